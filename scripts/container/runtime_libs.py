#!/usr/bin/env python3
"""Lists the shared libraries from the torch and onnxruntime wheels that the
server binary can load, so the runtime image copies those and nothing else.

Two ways a library gets loaded, and both are followed to a fixed point:
  * linked: `ldd` of the binary, and of every library kept;
  * opened at run time with dlopen: cuDNN opens its engine libraries, torch
    opens NVRTC for kernels it compiles, ONNX Runtime is opened by the binary.
    Such names are not in the ELF's NEEDED list, but they are string
    constants in the library that opens them, so every library file in the
    wheels whose name appears as a string in a kept file is kept too.
The second rule over-keeps rather than under-keeps (a name mentioned in an
error message is kept as well), which is the safe side: a library missing on
the CUDA path would only show up on a GPU. What it drops is what nothing
names: torch's Python bindings, the CUDA static archives and headers, the
multi-node NVSHMEM transports, the tools' profiling libraries.

The second rule applies only when the binary links libtorch_cuda. A CPU-only
build (SERESNEXT_LINK_CUDA=0) keeps the linked closure plus the libraries
given on the command line (libonnxruntime, which the binary opens itself):
its run-time opens can be observed on any machine, and
scripts/container/image_test.py does so with LD_DEBUG, failing on any
library the process tried to open and could not find.

Usage: runtime_libs.py BINARY SITE_PACKAGES [EXTRA_LIBRARY...]
Prints one absolute path per line (the files to copy; symlinks resolved).
"""
import os
import re
import subprocess
import sys

WHEEL_DIRS = ("torch/lib", "nvidia", "onnxruntime/capi")
SONAME = re.compile(rb"lib[A-Za-z0-9_+.-]*?\.so(?:\.[0-9]+)*")


def wheel_libraries(site):
    """Every shared-library file in the wheels, by file name."""
    found = {}
    for top in WHEEL_DIRS:
        for root, _dirs, files in os.walk(os.path.join(site, top)):
            for name in files:
                if ".so" in name and not name.endswith((".a", ".py", ".pyi")):
                    found.setdefault(name, os.path.join(root, name))
    return found


def linked(path):
    """Absolute paths `ldd` resolves for PATH (the loader's own view)."""
    out = subprocess.run(["ldd", path], capture_output=True, check=True).stdout
    for line in out.decode().splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[1].strip().startswith("/"):
            yield os.path.realpath(parts[1].split("(")[0].strip())


def named_strings(path):
    with open(path, "rb") as handle:
        return {match.decode() for match in SONAME.findall(handle.read())}


def main():
    binary, site, *extra = sys.argv[1:]
    site = os.path.realpath(site)
    libraries = wheel_libraries(site)
    by_real = {os.path.realpath(p): p for p in libraries.values()}
    keep = set()
    roots = [os.path.realpath(binary)] + [os.path.realpath(e) for e in extra]
    follow_names = any(os.path.basename(p) == "libtorch_cuda.so" for p in linked(binary))
    pending = list(roots)
    keep.update(p for p in roots[1:] if p in by_real)
    while pending:
        path = pending.pop()
        candidates = set(linked(path))
        for name in named_strings(path) if follow_names else ():
            # "libcudnn_cnn.so" may be written without the version suffix.
            for lib_name, lib_path in libraries.items():
                if lib_name == name or lib_name.startswith(name + "."):
                    candidates.add(os.path.realpath(lib_path))
        for candidate in candidates:
            if candidate in by_real and candidate not in keep:
                keep.add(candidate)
                pending.append(candidate)
    for path in sorted(keep):
        print(path)


if __name__ == "__main__":
    main()
