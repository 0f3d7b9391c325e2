from gan4rec.cli import main

raise SystemExit(main())
