import sys

from smmcl.cli import main

sys.exit(main())
