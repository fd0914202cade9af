from bragserve.cli import main

main()
