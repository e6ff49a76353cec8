from e5search.cli import main

raise SystemExit(main())
