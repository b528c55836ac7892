"""Print the oldest supported stack that setup.cfg declares.

``python .ci/floors.py python``: the oldest Python (python_requires' floor),
``python .ci/floors.py constraints``: pip constraints pinning every
install_requires entry to its floor (``numpy>=1.24`` -> ``numpy==1.24``).
"""

import configparser
import re
import sys
from pathlib import Path

config = configparser.ConfigParser()
config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
options = config["options"]
if sys.argv[1:] == ["python"]:
    print(re.fullmatch(r">=\s*([\d.]+)", options["python_requires"].strip())[1])
elif sys.argv[1:] == ["constraints"]:
    for line in options["install_requires"].split("\n"):
        requirement = line.split("#")[0].strip()
        if requirement:
            pattern = r"([\w.-]+)\s*>=\s*([\w.]+)"
            name, floor = re.fullmatch(pattern, requirement).groups()
            print(f"{name}=={floor}")
else:
    sys.exit("usage: floors.py python|constraints")
