[playlist]
File1=http://mustserv.test:8080/stream/Music/Bj%C3%B6rk/Homogenic/01%20Hunter.mp3
Title1=Björk - Hunter
Length1=255
File2=http://mustserv.test:8080/stream/Music/Bj%C3%B6rk/Homogenic/02%20J%C3%B3ga.mp3
Title2=Björk - Jóga
Length2=305
NumberOfEntries=2
Version=2
