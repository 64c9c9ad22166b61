import sys

from nsv.main import main

sys.exit(main())
