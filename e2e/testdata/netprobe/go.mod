module example.com/netprobe

go 1.22
