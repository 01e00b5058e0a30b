module example.com/envgo

go 1.22
