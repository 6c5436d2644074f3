from conduit_core.cli.app import main

main()
