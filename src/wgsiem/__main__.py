from wgsiem.cli.main import main

main()
