from flowdesk.cli.main import main

main()
