from pr1.cli import main

main()
