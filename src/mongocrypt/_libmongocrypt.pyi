# The compiled cffi module: its surface is the C declarations in bindings/.
from typing import Any

ffi: Any
lib: Any
