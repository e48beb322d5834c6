#!/usr/bin/env python3
"""core/embed_text.py IN OUT — turns a text file into a C string literal
(one quoted line per input line) for #include inside an initializer."""
import sys

with open(sys.argv[1], encoding="utf-8") as f, open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("/* generated from %s by core/embed_text.py; do not edit */\n" % sys.argv[1].rsplit("/", 1)[-1])
    for line in f:
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        out.write('"%s"\n' % esc)
