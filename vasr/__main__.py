from vasr.cli import main

raise SystemExit(main())
