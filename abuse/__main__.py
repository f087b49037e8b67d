from abuse.campaign import main

raise SystemExit(main())
