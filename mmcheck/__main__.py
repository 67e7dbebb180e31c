from mmcheck.checker.cli import main

raise SystemExit(main())
