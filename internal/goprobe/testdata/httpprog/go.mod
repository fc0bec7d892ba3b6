module example.com/httpprog

go 1.22
