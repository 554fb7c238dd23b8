module tailsim

go 1.25
