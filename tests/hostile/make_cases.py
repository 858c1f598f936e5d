#!/usr/bin/env python3
"""Writes the hostile data and checkpoint files of tests/hostile/data/.

    python3 tests/hostile/make_cases.py [BUILD]     (BUILD defaults to build)

The files are committed; this script is how they were made, so a case can
be remade (or a new one added) the same way. Each file NAME has a
NAME.expect beside it, written by hand: the command and the one line it
must print (see tests/test_safety.c). The checkpoints come from
BUILD/iris_train and BUILD/norm_wx_train, so after a change to
models/iris.lua they must be remade, and their .expect files checked.

Every file is written byte by byte (no numpy), so the same script gives
the same bytes everywhere; only the checkpoints' parameter values depend
on the machine that trained them.
"""
import gzip
import math
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def gz(data):
    # mtime 0: the same bytes on every run.
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- .npy ----

def npy_header(descr, shape, fortran=False, major=1, dict_text=None):
    if dict_text is None:
        dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
        dict_text = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
            descr, "True" if fortran else "False", dims)
    lenbytes = 2 if major == 1 else 4
    total = 6 + 2 + lenbytes + len(dict_text) + 1
    pad = (total + 63) // 64 * 64 - total
    text = (dict_text + " " * pad + "\n").encode()
    fmt = "<H" if major == 1 else "<I"
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack(fmt, len(text)) + text


def npy(descr, shape, values, fmt, **kw):
    """fmt: the struct format of one element ('<f', '<d', '<i', '<q', '>f')."""
    return npy_header(descr, shape, **kw) + b"".join(struct.pack(fmt, v) for v in values)


def iris_rows(n):
    """n rows of 4 plausible measurements, exact in float32."""
    return [((r * 7 + k * 3) % 16) * 0.5 for r in range(n) for k in range(4)]


def npy_cases():
    x = iris_rows(150)
    good = npy("<f4", (150, 4), x, "<f")
    write("npy_truncated.npy", good[:128 + 400])
    write("npy_longer.npy", good + struct.pack("<4f", 1, 2, 3, 4))
    write("npy_header_cut.npy", good[:40])
    # Format 2.0: a 4-byte header length, here 4 GiB; the file is 64 bytes.
    write("npy_huge_header_len.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) +
          b"{'descr': '<f4', " + b" " * 40)
    write("npy_absurd_shape.npy", npy_header("<f4", (10**12, 10**12)) + good[128:])
    write("npy_lying_shape.npy", npy_header("<f4", (2**40, 4)) + good[128:])
    write("npy_rank7.npy", npy_header("<f4", (1, 1, 1, 1, 1, 150, 4)) + good[128:])
    write("npy_not_a_dict.npy", npy_header("", (), dict_text="['descr', '<f4']") + good[128:])
    write("npy_complex.npy", npy("<c8", (150, 4), [0] * 1200, "<f"))
    write("npy_fortran.npy", npy("<f4", (150, 4), x, "<f", fortran=True))
    write("npy_big_endian.npy", npy(">f4", (150, 4), x, ">f"))
    write("npy_bad_magic.npy", b"x,y\n1,2\n")
    write("npy_wrong_shape.npy", npy("<f4", (150, 5), iris_rows(150) + x[:150], "<f"))
    write("npy_too_few_rows.npy", npy("<f4", (10, 4), x[:40], "<f"))
    write("npy_inexact.npy", npy("<f8", (150, 4), [0.5] * 6 + [0.1] + [0.5] * 593, "<d"))
    nan = list(x)
    nan[5] = math.nan
    write("npy_nan.npy", npy("<f4", (150, 4), nan, "<f"))
    inf = [float(v) for v in x]
    inf[9] = -math.inf
    write("npy_inf.npy", npy("<f8", (150, 4), inf, "<d"))
    write("val_nan.npy", npy("<f4", (150, 4), nan, "<f"))
    labels = [r % 3 for r in range(150)]
    wrong = list(labels)
    wrong[7] = 3
    write("labels_out_of_range.npy", npy("<i4", (150,), wrong, "<i"))
    big = list(labels)
    big[2] = 2**40
    write("labels_int64_huge.npy", npy("<i8", (150,), big, "<q"))
    half = [float(v) for v in labels]
    half[4] = 1.5
    write("labels_fraction.npy", npy("<f8", (150,), half, "<d"))


# ---- CSV ----

CSV_HEAD = "sepal_length,sepal_width,petal_length,petal_width,species\n"


def csv_rows(n):
    return "".join("%g,%g,%g,%g,%d\n" % (5 + r % 3, 3.5, 1.4, 0.2, r % 3) for r in range(n))


def with_line(text, line, new):
    """text with its line `line` (from 1) replaced by new."""
    lines = text.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


def csv_cases():
    good = CSV_HEAD + csv_rows(150)
    write("csv_ragged.csv", with_line(good, 5, "5.1,3.5,1.4,0").encode())
    write("csv_word.csv", with_line(good, 3, "5.1,three,1.4,0.2,0").encode())
    write("csv_nan.csv", with_line(good, 4, "5.1,nan,1.4,0.2,0").encode())
    write("csv_huge_value.csv", with_line(good, 6, "5.1,3.5,1e999,0.2,0").encode())
    # A blank line before the bad one: messages count lines, not rows.
    write("csv_label_fraction.csv", with_line(good, 3, "\n5.1,3.5,1.4,0.2,1.5").encode())
    write("csv_label_out_of_range.csv", with_line(good, 9, "5.1,3.5,1.4,0.2,7").encode())
    # A .npy under a CSV name: binary, with NUL bytes in its lines.
    write("csv_binary.csv", npy("<f4", (3, 5), [1, 2, 3, 4, 0] * 3, "<f"))
    # Gzip cut in the middle of its stream, and one with a bad CRC.
    packed = gz(good.encode())
    write("csv_truncated.csv.gz", packed[:len(packed) // 2])
    crc = bytearray(packed)
    crc[-8] ^= 0xFF
    write("csv_bad_crc.csv.gz", bytes(crc))
    # A gzip bomb: 64 KiB that inflate to one 64 MiB line of zeros.
    write("csv_bomb.csv.gz", gz(b"0" * (64 << 20)))


# ---- IDX ----

def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_cases():
    x = b"".join(struct.pack(">f", v) for v in iris_rows(150))
    write("idx_lying_count.idx", idx(0x0D, (150, 4), x[:100 * 16]))
    write("idx_longer.idx", idx(0x0D, (150, 4), x + x[:16]))
    write("idx_huge.idx.gz", gz(idx(0x08, (65536, 65536, 65536), b"\0" * 64)))
    inf = bytearray(x)
    inf[4 * 13:4 * 14] = struct.pack(">f", math.inf)
    write("idx_inf.idx", idx(0x0D, (150, 2, 2), bytes(inf)))
    packed = gz(idx(0x0D, (150, 4), x))
    write("idx_truncated.idx.gz", packed[:len(packed) * 2 // 3])
    write("idx_labels_lying.idx", idx(0x08, (150,), bytes(r % 3 for r in range(100))))


# ---- llm.c token files (.bin) ----

def tokens(toks, count=None, magic=20240520, version=1, fmt="<H"):
    """llm.c's layout: 256 int32 (magic, version, count, zeros), then the tokens."""
    head = [magic, version, len(toks) if count is None else count] + [0] * 253
    return struct.pack("<256i", *head) + b"".join(struct.pack(fmt, t) for t in toks)


def shakespeare(n):
    """The first n bytes of the shipped text, as tokens of a byte model."""
    path = os.path.join(os.path.dirname(HERE), "..", "..", "data", "tinyshakespeare.txt")
    with open(path, "rb") as f:
        return list(f.read(n))


def tokens_cases():
    text = shakespeare(2000)
    write("tokens_empty.bin", b"")
    write("tokens_header_cut.bin", tokens(text)[:600])
    # gpt2_tokenizer.bin, say, given as data: its magic is the tokenizer's.
    write("tokens_bad_magic.bin", tokens(text, magic=20240328))
    write("tokens_llama3.bin", tokens(text, magic=20240801, version=7, fmt="<I"))
    write("tokens_version.bin", tokens(text, version=2))
    write("tokens_negative_count.bin", tokens(text, count=-1))
    write("tokens_truncated.bin", tokens(text)[:1024 + 2 * 1500])
    write("tokens_longer.bin", tokens(text, count=1500))
    write("tokens_too_few.bin", tokens(text[:100]))
    # GPT-2 ids for a model of 128 byte classes.
    gpt2 = list(text)
    gpt2[777] = 5000
    write("tokens_out_of_vocab.bin", tokens(gpt2))


# ---- checkpoints ----

def fnv(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def resum(body):
    """A checkpoint with its checksum made right again after an edit."""
    body = bytes(body[:-8])
    return body + struct.pack("<Q", fnv(body))


def trained(prog):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.ckpt")
        subprocess.run([os.path.join(BUILD, prog), "--steps", "3", "--checkpoint", path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(path, "rb") as f:
            return f.read()


def ckpt_cases():
    good = trained("iris_train")
    assert len(good) == 252, "models/iris.lua changed: check every ckpt_*.expect"
    bad = bytearray(good)
    bad[130] ^= 0x10  # a bit of the first parameter
    write("ckpt_bad_checksum.ckpt", bytes(bad))
    write("ckpt_other_model.ckpt", trained("norm_wx_train"))
    newer = bytearray(good)
    newer[8] = 3
    write("ckpt_newer_version.ckpt", resum(newer))
    write("ckpt_truncated.ckpt", good[:200])
    write("ckpt_empty.ckpt", b"")
    lying = bytearray(good)
    lying[44:52] = struct.pack("<q", 1 << 62)  # n_saved
    write("ckpt_lying_counts.ckpt", resum(lying))
    nan = bytearray(good)
    nan[124 + 4 * 2:124 + 4 * 3] = struct.pack("<f", math.nan)  # W element 2
    write("ckpt_nan_params.ckpt", resum(nan))
    neg = bytearray(good)
    neg[28:36] = struct.pack("<q", -1)
    write("ckpt_negative_step.ckpt", resum(neg))
    write("ckpt_npy.ckpt", npy("<f4", (15,), [0] * 15, "<f"))


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    npy_cases()
    csv_cases()
    idx_cases()
    tokens_cases()
    ckpt_cases()
