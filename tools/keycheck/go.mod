module proxmox-talos/tools/keycheck

go 1.22
