from waha_tui.cli import main

main()
