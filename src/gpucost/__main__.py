from gpucost.cli.app import main

main()
