"""`python -m frame_daemon` runs the command line."""

import sys

from frame_daemon.cli import main

sys.exit(main())
