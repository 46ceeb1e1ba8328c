#!/usr/bin/env python3
"""tools/analyze.py BUILD_DIR: gcc's static analyzer (-fanalyzer) over src/.

Every library source is compiled again, as BUILD_DIR's compile_commands.json
compiles it (a gcc build), with -fanalyzer and warnings as errors; the
object goes to /dev/null.  Fails if the analyzer reports anything that
SUPPRESS below does not name.
"""
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# Analyzer checks turned off for one file, each with the place it is about
# and why the report is wrong.  gcc 12's analyzer does not follow a bool
# that records an earlier NULL check, nor ownership handed to a struct
# reached through another pointer; rewriting correct code around that is
# not worth it.  Keep each entry to the smallest check that silences it.
SUPPRESS = {
    # mp__pool_dup: memcpy into d only when d != NULL (the analyzer splits
    # the paths of n ? n : 1 and loses the check); finish_slots: the copy
    # is owned by the caller's user_bytes array, which the analyzer cannot
    # see, so it reports it leaked.
    'pool_calls.c': ['-Wno-analyzer-possible-null-argument',
                     '-Wno-analyzer-malloc-leak'],
    # list_sort: x and tmp are used only while !failed, and failed is set
    # when either calloc returned NULL.
    'mgr_list.c': ['-Wno-analyzer-possible-null-argument',
                   '-Wno-analyzer-possible-null-dereference'],
    # drain_imaps: list is written only inside a loop whose condition
    # checks list != NULL.
    'pool.c': ['-Wno-analyzer-possible-null-dereference'],
    # do_task: S->buf is written after grow() of a size that is at least
    # sizeof res, so never NULL; serve: in is grown to count + 1 >= 1 bytes
    # (count < 0 is refused) before do_hello and do_task read it.  The
    # analyzer lets those sizes be 0, when grow() keeps a NULL buffer.
    'context_mpi.c': ['-Wno-analyzer-null-argument',
                      '-Wno-analyzer-null-dereference'],
    # grow: the realloc'd buffer is stored in W->buf, which the analyzer
    # does not follow, so it reports it leaked.
    'pool_mpi.c': ['-Wno-analyzer-malloc-leak'],
    # dict_reindex: the new bucket array is stored in d->dict.index_->b,
    # which the analyzer does not follow, so it reports it leaked.
    'val_dict.c': ['-Wno-analyzer-malloc-leak'],
}


def commands(build):
    with open(os.path.join(build, 'compile_commands.json')) as f:
        entries = json.load(f)
    seen = set()
    for e in entries:
        src = os.path.normpath(os.path.join(e['directory'], e['file']))
        parts = src.split(os.sep)
        if len(parts) < 2 or parts[-2] != 'src' or not src.endswith('.c'):
            continue
        if src in seen:  # the shared and the static library share sources
            continue
        seen.add(src)
        argv = shlex.split(e['command'])
        out, skip = [], False
        for a in argv:
            if skip:
                skip = False
                continue
            if a in ('-o', '-MQ', '-MF'):
                skip = True
                continue
            if a in ('-MD', '-fdiagnostics-color=always'):
                continue
            out.append(a)
        name = os.path.basename(src)
        out += ['-fanalyzer', '-Werror', '-o', '/dev/null']
        out += SUPPRESS.get(name, [])
        yield name, e['directory'], out


def run(job):
    name, cwd, argv = job
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return name, p.returncode, p.stdout


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: tools/analyze.py BUILD_DIR')
    jobs = list(commands(sys.argv[1]))
    if not jobs:
        sys.exit('analyze: no src/*.c in compile_commands.json')
    version = subprocess.run([jobs[0][2][0], '--version'],
                             stdout=subprocess.PIPE, text=True).stdout
    if 'clang' in version:
        sys.exit('analyze: BUILD_DIR must be a gcc build')
    bad = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for name, rc, text in ex.map(run, jobs):
            if rc != 0 or 'warning:' in text:
                bad += 1
                sys.stderr.write(text)
    print(f'analyze: {len(jobs)} files, {bad} with findings')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
