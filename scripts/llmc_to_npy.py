#!/usr/bin/python3
"""Converts llm.c's GPT-2 checkpoints to gradc's .npy files and back.

    scripts/llmc_to_npy.py CHECKPOINT.bin DIR
    scripts/llmc_to_npy.py --to-llmc DIR CHECKPOINT.bin --heads NH --vocab V

The first form reads a checkpoint of llm.c's train_gpt2.c (gpt2_124M.bin:
version 3, float32) and writes one .npy per parameter of models/gpt2.lua
into DIR, for a trainer's --init DIR; it prints the configuration it found
and the -D flags to compile models/gpt2.lua with. The second writes such a
checkpoint from a directory of those files (a trainer's --export DIR), for
llm.c to run; the shapes give every size but the number of heads and the
vocabulary without its padding, which --heads and --vocab give.

llm.c's file is a header of 256 little-endian int32 (magic 20240326,
version 3, maxT, V, L, NH, C, Vp, then zeros) and the float32 parameters,
each tensor stacked over the layers, matrices [out, in]:

    wte [Vp, C]  wpe [maxT, C]  ln1w [L, C]  ln1b [L, C]  qkvw [L, 3C, C]
    qkvb [L, 3C]  attprojw [L, C, C]  attprojb [L, C]  ln2w [L, C]
    ln2b [L, C]  fcw [L, 4C, C]  fcb [L, 4C]  fcprojw [L, C, 4C]
    fcprojb [L, C]  lnfw [C]  lnfb [C]

gradc's files are wte.npy, wpe.npy, then per layer l h{l}_ln1_w.npy,
h{l}_ln1_b, h{l}_qkv_w, h{l}_qkv_b, h{l}_attproj_w, h{l}_attproj_b,
h{l}_ln2_w, h{l}_ln2_b, h{l}_fc_w, h{l}_fc_b, h{l}_fcproj_w,
h{l}_fcproj_b, and lnf_w.npy, lnf_b.npy, each in llm.c's layout, so
nothing is transposed and a round trip gives the same bytes.

A file that is not such a checkpoint (another magic, llm.c's bfloat16
version 5, a truncated file, bytes past the parameters) or a directory that
does not hold exactly these files is refused in one line naming the file
and what is wrong, exit 1; what is written goes to a temporary name first
and is renamed into place, so a refused or failed run leaves nothing.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile

import numpy as np

PROG = os.path.basename(sys.argv[0])
MAGIC, VERSION, BF16_VERSION = 20240326, 3, 5
HEADER_INTS = 256
HEADER_BYTES = 4 * HEADER_INTS

# llm.c's tensors in file order: its name, gradc's (the file NAME.npy for
# the four in GLOBAL, h{l}_NAME.npy per layer for the others) and one
# layer's shape from the config.
TENSORS = [
    ("wte", "wte", lambda c: (c["Vp"], c["C"])),
    ("wpe", "wpe", lambda c: (c["maxT"], c["C"])),
    ("ln1w", "ln1_w", lambda c: (c["C"],)),
    ("ln1b", "ln1_b", lambda c: (c["C"],)),
    ("qkvw", "qkv_w", lambda c: (3 * c["C"], c["C"])),
    ("qkvb", "qkv_b", lambda c: (3 * c["C"],)),
    ("attprojw", "attproj_w", lambda c: (c["C"], c["C"])),
    ("attprojb", "attproj_b", lambda c: (c["C"],)),
    ("ln2w", "ln2_w", lambda c: (c["C"],)),
    ("ln2b", "ln2_b", lambda c: (c["C"],)),
    ("fcw", "fc_w", lambda c: (4 * c["C"], c["C"])),
    ("fcb", "fc_b", lambda c: (4 * c["C"],)),
    ("fcprojw", "fcproj_w", lambda c: (c["C"], 4 * c["C"])),
    ("fcprojb", "fcproj_b", lambda c: (c["C"],)),
    ("lnfw", "lnf_w", lambda c: (c["C"],)),
    ("lnfb", "lnf_b", lambda c: (c["C"],)),
]
GLOBAL = {"wte", "wpe", "lnfw", "lnfb"}  # one tensor, not one per layer


class Refused(Exception):
    """A file or directory this converter will not take: one line."""


def files_of(config):
    """(llm.c tensor, gradc file name, shape) in llm.c's file order."""
    for llmc, gradc, shape in TENSORS:
        if llmc in GLOBAL:
            yield llmc, gradc + ".npy", shape(config)
        else:
            for layer in range(config["L"]):
                yield llmc, "h%d_%s.npy" % (layer, gradc), shape(config)


def n_values(config):
    return sum(int(np.prod(shape)) for _, _, shape in files_of(config))


def describe(config):
    return "L=%(L)d C=%(C)d NH=%(NH)d V=%(V)d Vp=%(Vp)d maxT=%(maxT)d" % config


def check_config(where, config):
    """Sizes llm.c could have written: positive, Vp >= V, C a multiple of NH."""
    bad = [k for k in ("maxT", "V", "L", "NH", "C", "Vp") if config[k] <= 0]
    if bad:
        raise Refused("%s: %s is %d; llm.c's sizes are all positive (%s)"
                      % (where, bad[0], config[bad[0]], describe(config)))
    if config["Vp"] < config["V"]:
        raise Refused("%s: the padded vocabulary Vp=%d is smaller than V=%d"
                      % (where, config["Vp"], config["V"]))
    if config["C"] % config["NH"]:
        raise Refused("%s: width C=%d is not a multiple of the %d heads"
                      % (where, config["C"], config["NH"]))


def check_finite(where, a):
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a.reshape(-1)))[0])
        raise Refused("%s element %d is %s; weights must be finite"
                      % (where, i, a.reshape(-1)[i]))


def gradc_flags(config):
    return ("-D layers=%(L)d -D width=%(C)d -D heads=%(NH)d -D vocab=%(V)d "
            "-D max_context=%(maxT)d" % config)


# ---- llm.c to .npy ----

def read_header(path, f, size):
    head = f.read(HEADER_BYTES)
    if len(head) >= 4 and np.frombuffer(head[:4], dtype="<i4")[0] != MAGIC:
        raise Refused("%s: not an llm.c GPT-2 checkpoint (magic %d, not %d)"
                      % (path, np.frombuffer(head[:4], dtype="<i4")[0], MAGIC))
    if len(head) < HEADER_BYTES:
        raise Refused("%s: truncated: %d bytes, shorter than llm.c's %d-byte header"
                      % (path, size, HEADER_BYTES))
    h = np.frombuffer(head, dtype="<i4")
    if h[1] == BF16_VERSION:
        raise Refused("%s: llm.c version 5 (bfloat16 weights); this reads version 3, "
                      "float32 (train_gpt2.py writes both: take gpt2_124M.bin, not "
                      "gpt2_124M_bf16.bin)" % path)
    if h[1] != VERSION:
        raise Refused("%s: llm.c checkpoint version %d; this reads version 3 (float32)"
                      % (path, h[1]))
    config = dict(zip(("maxT", "V", "L", "NH", "C", "Vp"), (int(v) for v in h[2:8])))
    check_config(path, config)
    if h[8:].any():
        print("%s: %s: header ints 8..255 are not all zero; the .npy files do not keep them"
              % (PROG, path), file=sys.stderr)
    return config


def from_llmc(path, out):
    try:
        f = open(path, "rb")
    except OSError as e:
        raise Refused("%s: cannot open: %s" % (path, e.strerror))
    with f:
        size = os.fstat(f.fileno()).st_size
        config = read_header(path, f, size)
        want = HEADER_BYTES + 4 * n_values(config)
        if size < want:
            raise Refused("%s: truncated: %d bytes, where a checkpoint of %s has %d"
                          % (path, size, describe(config), want))
        if size > want:
            raise Refused("%s: %d bytes past the parameters: %d bytes, where a checkpoint "
                          "of %s has %d" % (path, size - want, size, describe(config), want))
        check_out_dir(out)
        with staged_dir(out) as tmp:
            for llmc, name, shape in files_of(config):
                a = np.fromfile(f, dtype="<f4", count=int(np.prod(shape))).reshape(shape)
                check_finite("%s: %s (llm.c's %s)" % (path, name[:-4], llmc), a)
                np.save(os.path.join(tmp, name), a)
    print("%s: llm.c GPT-2, version 3 (float32): %s" % (path, describe(config)))
    print("wrote %d .npy files to %s (for a trainer's --init %s)"
          % (len(list(files_of(config))), out, out))
    print("compile models/gpt2.lua with: %s" % gradc_flags(config))


def check_out_dir(out):
    if os.path.isdir(out) and os.listdir(out):
        raise Refused("%s: exists and is not empty (give a new directory: --init takes "
                      "only these files)" % out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise Refused("%s: exists and is not a directory" % out)


class staged_dir:
    """A temporary directory beside out, renamed to out when all went well
    and removed when not: out never holds half the files."""

    def __init__(self, out):
        self.out = out

    def __enter__(self):
        parent = os.path.dirname(os.path.abspath(self.out))
        try:
            self.tmp = tempfile.mkdtemp(prefix=".%s.tmp." % os.path.basename(self.out),
                                        dir=parent)
        except OSError as e:
            raise Refused("%s: cannot create a directory in %s: %s"
                          % (self.out, parent, e.strerror))
        return self.tmp

    def __exit__(self, kind, value, trace):
        if kind is None:
            try:
                os.chmod(self.tmp, 0o777 & ~current_umask())
                os.rename(self.tmp, self.out)  # an empty out is replaced
                return False
            except OSError as e:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise Refused("%s: cannot write: %s" % (self.out, e.strerror))
        shutil.rmtree(self.tmp, ignore_errors=True)
        if isinstance(value, OSError):
            raise Refused("%s: cannot write: %s" % (self.out, value.strerror))
        return False


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- .npy to llm.c ----

def npy_header(path):
    """A .npy file's shape and dtype, from its header, once its size is
    checked against them: numpy's own message for a short file is about
    a reshape, not the file."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise Refused("%s: .npy format %d.%d; np.save writes 1.0" % ((path,) + version))
            shape, fortran, dtype = read(f)
            start, size = f.tell(), os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise Refused("%s: not a readable .npy file: %s" % (path, str(e).splitlines()[0]))
    need = int(np.prod(shape)) * dtype.itemsize
    if size - start != need:
        raise Refused("%s: %s: header says %s %s (%d bytes), file has %d bytes of data"
                      % (path, "truncated" if size - start < need else "longer than its header "
                         "says", list(shape), dtype, need, size - start))
    return shape, dtype


def load_npy(path, name, shape, config):
    try:
        have, dtype = npy_header(path)
    except FileNotFoundError:
        raise Refused("%s: missing: GPT-2 with %s has this parameter (llm.c's %s)"
                      % (path, describe(config), name))
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise Refused("%s: dtype %s; the weights must be float32 or float64" % (path, dtype))
    if have != tuple(shape):
        raise Refused("%s: shape %s, but llm.c's %s is %s with %s"
                      % (path, list(have), name, list(shape), describe(config)))
    a = np.load(path, allow_pickle=False)
    check_finite(path + ":", a)
    with np.errstate(over="ignore"):
        b = a.astype("<f4")
    if not np.isfinite(b).all():
        i = int(np.flatnonzero(~np.isfinite(b.reshape(-1)))[0])
        raise Refused("%s: element %d is %g, beyond float32's range"
                      % (path, i, a.reshape(-1)[i]))
    return b


def shape_of(path):
    try:
        return npy_header(path)[0]
    except FileNotFoundError:
        raise Refused("%s: missing: every GPT-2 has it" % path)


def config_of(d, heads, vocab):
    """llm.c's header from the files' shapes, --heads and --vocab."""
    wte, wpe = shape_of(os.path.join(d, "wte.npy")), shape_of(os.path.join(d, "wpe.npy"))
    if len(wte) != 2 or len(wpe) != 2 or wte[1] != wpe[1]:
        raise Refused("%s: wte.npy %s and wpe.npy %s are not [Vp, C] and [maxT, C]"
                      % (d, list(wte), list(wpe)))
    names = set(n for n in os.listdir(d) if n.endswith(".npy"))
    # The highest layer any file names (at least layer 0): a layer's missing
    # file is then named as missing, not the layers after it as strays.
    layers = 1 + max([int(m.group(1)) for m in map(re.compile(r"h(\d+)_").match, names) if m]
                     or [0])
    config = {"maxT": wpe[0], "V": vocab, "L": layers, "NH": heads, "C": wte[1], "Vp": wte[0]}
    check_config(d, config)
    expected = set(name for _, name, _ in files_of(config))
    stray = sorted(names - expected)
    if stray:
        raise Refused("%s: names no parameter of GPT-2 with %s"
                      % (os.path.join(d, stray[0]), describe(config)))
    return config


def to_llmc(d, path, heads, vocab):
    if not os.path.isdir(d):
        raise Refused("%s: %s" % (d, "not a directory" if os.path.exists(d)
                                  else "cannot open: No such file or directory"))
    if heads is None or vocab is None:
        raise Refused("%s: the shapes do not say the number of heads or the unpadded "
                      "vocabulary: give --heads NH and --vocab V (llm.c's GPT-2: 12 and 50257)"
                      % d)
    config = config_of(d, heads, vocab)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:8] = [MAGIC, VERSION, config["maxT"], config["V"], config["L"], config["NH"],
                  config["C"], config["Vp"]]
    parent = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s.tmp." % os.path.basename(path), dir=parent)
    except OSError as e:
        raise Refused("%s: cannot create a file in %s: %s" % (path, parent, e.strerror))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header.tobytes())
            for llmc, name, shape in files_of(config):
                f.write(load_npy(os.path.join(d, name), llmc, shape, config).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise Refused("%s: cannot write: %s" % (path, e.strerror))
    except BaseException:
        os.unlink(tmp)
        raise
    print("%s: GPT-2 weights, %s" % (d, describe(config)))
    print("wrote %s: llm.c version 3 (float32), %d bytes"
          % (path, HEADER_BYTES + 4 * n_values(config)))


# ---- the command line ----

class Parser(argparse.ArgumentParser):
    def error(self, message):
        print("%s: %s (try --help)" % (PROG, message), file=sys.stderr)
        sys.exit(2)


def main(argv):
    p = Parser(prog=PROG,
               usage="%(prog)s CHECKPOINT.bin DIR\n"
               "       %(prog)s --to-llmc DIR CHECKPOINT.bin --heads NH --vocab V",
               description="Converts llm.c's GPT-2 checkpoints (train_gpt2.c's version 3,\n"
               "float32) to one .npy per parameter of models/gpt2.lua, for a trainer's\n"
               "--init DIR, and prints the -D flags to compile the model with; and back,\n"
               "with --to-llmc, from a trainer's --export DIR.",
               epilog="examples:\n"
               "  %(prog)s gpt2_124M.bin w      # then gpt2_train --init w ...\n"
               "  %(prog)s --to-llmc e out.bin --heads 12 --vocab 50257\n"
               "                                   # e from gpt2_train --export e",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="CHECKPOINT.bin (or, with --to-llmc, DIR)")
    p.add_argument("dest", help="DIR, a new directory (or, with --to-llmc, CHECKPOINT.bin)")
    p.add_argument("--to-llmc", action="store_true",
                   help="write an llm.c checkpoint from a directory of .npy files")
    p.add_argument("--heads", type=int, metavar="NH",
                   help="--to-llmc: the number of attention heads")
    p.add_argument("--vocab", type=int, metavar="V",
                   help="--to-llmc: the vocabulary without llm.c's padding (wte has Vp rows)")
    a = p.parse_args(argv)
    if not a.to_llmc and (a.heads is not None or a.vocab is not None):
        p.error("--heads and --vocab are for --to-llmc: a checkpoint's header has them")
    try:
        if a.to_llmc:
            to_llmc(a.source, a.dest, a.heads, a.vocab)
        else:
            from_llmc(a.source, a.dest)
    except Refused as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
