#!/usr/bin/env python3
"""mkman.py: libmp's manual pages, made from the comment blocks of the public
headers (their one source: docs/design.md, "Manual pages").

    mkman.py --version V --outdir DIR [--stamp FILE] include/libmp.h include/libmp/*.h

writes, under DIR:
  man7/libmp.7            the overview: libmp.h's comment, then each module's
                          Python-to-C table (the opening comment of its header);
  man3/libmp_MODULE.3     one page per header: its opening comment, then every
                          declaration with the comment block above it;
  man3/NAME.3             one page per public function (MP_EXTERN) and per
                          function-like macro (mp_queue_new, ...), holding the
                          comment block and declarations it belongs to.
A function added to a header gets its page at the next build, without any
list to edit.  Pages of earlier runs that no longer belong are removed
(not with --install, which writes into the installed tree).
"""
import argparse
import os
import re
import sys

GUARD = re.compile(r'^\s*(#\s*(ifndef|ifdef|if|endif|else|elif|include)\b|'
                   r'#\s*define\s+LIBMP_\w+_H\s*$|MP_BEGIN_DECLS|MP_END_DECLS|extern "C\+\+"|\}\s*$)')
FUNC = re.compile(r'\bMP_EXTERN\b[^;]*?\b(mp_\w+)\s*\(', re.S)
MACRO = re.compile(r'^\s*#\s*define\s+(mp_[a-z0-9_]+)\(', re.M)


def escape(line):
    line = line.replace('\\', '\\e')
    if line.startswith(('.', "'")):
        line = '\\&' + line
    return line


def split_header(path):
    """The header's opening comment, and its groups: [comment lines, code lines]."""
    lines = open(path, encoding='utf-8').read().split('\n')
    groups = []
    top = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith('/*') and (i == 0 or not lines[i - 1].rstrip().endswith('\\')):
            body = []
            text = stripped[2:]
            while True:
                end = text.find('*/')
                if end >= 0:
                    body.append(text[:end])
                    break
                body.append(text)
                i += 1
                text = lines[i]
            i += 1
            body = clean_comment(body)
            if len(body) == 1 and re.match(r'^-{2,}.*-{4,}$', body[0].strip()):
                continue  # a section rule such as /* ---- imap ---- */
            if top is None:
                top = body
            elif groups and not groups[-1][1]:
                groups[-1][0] += [''] + body
            else:
                groups.append([body, []])
            continue
        if stripped and not GUARD.match(line):
            if not groups:
                groups.append([[], []])
            groups[-1][1].append(line.rstrip())
        elif not stripped and groups and groups[-1][1] and groups[-1][1][-1] != '':
            groups[-1][1].append('')
        i += 1
    for g in groups:
        while g[1] and g[1][-1] == '':
            g[1].pop()
    return top or [], groups


def clean_comment(body):
    out = []
    for raw in body:
        s = raw.rstrip()
        s = re.sub(r'^\s*\* ?', '', s) if re.match(r'^\s*\*', s) else s.strip() if not out else s
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    # A one-line comment keeps no leading blank.
    return [l.strip() if len(out) == 1 else l for l in out]


def plain(line):
    """A line of prose, which man may refill, rather than a table or code."""
    return line and not line[0].isspace() and '   ' not in line


def roff_text(lines):
    """Comment lines as roff: prose filled, indented or tabular lines kept."""
    out = []
    nofill = False
    for line in lines:
        if not line.strip():
            if nofill:
                out.append('.fi')
                nofill = False
            out.append('.PP')
            continue
        if plain(line):
            if nofill:
                out.append('.fi')
                nofill = False
        elif not nofill:
            out.append('.nf')
            nofill = True
        out.append(escape(line))
    if nofill:
        out.append('.fi')
    return out


def roff_code(lines):
    out = ['.nf']
    for line in lines:
        out.append(escape(line.replace('MP_EXTERN ', '')) if line else '')
    out.append('.fi')
    return out


def names_of(code):
    text = '\n'.join(code)
    return MACRO.findall(text) + FUNC.findall(text)


def summary(comment, name):
    """The NAME line: the comment's first sentence, after "name: "."""
    text = ' '.join(l.strip() for l in comment if l.strip())
    m = re.match(r'^[\w, /]*?\b' + re.escape(name) + r'\b[^:]*:\s*(.*)', text)
    text = m.group(1) if m else re.sub(r'^[\w, /]+:\s+', '', text)
    end = re.search(r'\.(\s|$)', text)
    text = text[:end.start()] if end else text
    text = text or 'part of libmp'
    return escape(text[:200])


def head(title, section, version):
    return ['.TH %s %s "" "libmp %s" "libmp manual"' % (title.upper().replace('_', '\\_'),
                                                        section, version)]


def module_of(path):
    base = os.path.basename(path)[:-2]
    return 'libmp' if base == 'libmp' else 'libmp_' + base


def module_page(path, top, groups, version, modules):
    name = module_of(path)
    first = top[0] if top else name
    desc = re.sub(r'^libmp/\w+\.h:\s*', '', first).rstrip('.')
    out = head(name, 3, version)
    out += ['.SH NAME', '%s \\- %s' % (name, escape(desc)),
            '.SH SYNOPSIS', '.nf', '.B #include <libmp.h>', '.fi',
            '.SH DESCRIPTION']
    out += roff_text(top[1:] if len(top) > 1 else top)
    funcs = [g for g in groups if names_of(g[1])]
    types = [g for g in groups if not names_of(g[1]) and g[1]]
    if types:
        out.append('.SH TYPES AND CONSTANTS')
        for comment, code in types:
            out += roff_code(code)
            if comment:
                out += roff_text(comment)
            out.append('.PP')
    if funcs:
        out.append('.SH FUNCTIONS')
        for comment, code in funcs:
            out.append('.SS ' + escape(', '.join(names_of(code))))
            out += roff_code(code)
            out.append('.PP')
            out += roff_text(comment)
    out += see_also([m for m in modules if m != name], 'libmp')
    return out


def function_page(name, module, comment, code, version):
    out = head(name, 3, version)
    out += ['.SH NAME', '%s \\- %s' % (escape(name), summary(comment, name)),
            '.SH SYNOPSIS', '.nf', '.B #include <libmp.h>', '.fi', '.PP']
    out += roff_code(code)
    out.append('.SH DESCRIPTION')
    out += roff_text(comment) if comment else ['See', '.BR %s (3).' % module]
    out += see_also([module], 'libmp')
    return out


def see_also(pages3, page7):
    refs = ['.BR %s (3)' % p for p in pages3] + ['.BR %s (7)' % page7]
    return ['.SH SEE ALSO'] + [r + ',' for r in refs[:-1]] + [refs[-1]]


def overview_page(umbrella_top, modules, version):
    out = head('libmp', 7, version)
    out += ['.SH NAME', "libmp \\- Python's multiprocessing for C programs on Linux",
            '.SH SYNOPSIS', '.nf', '.B #include <libmp.h>', '.PP',
            '.B cc prog.c $(pkg-config --cflags --libs libmp)', '.fi',
            '.SH DESCRIPTION']
    out += roff_text(umbrella_top[1:])
    out += ['.SH PYTHON TO C',
            'Each module of Python\'s multiprocessing is a header of libmp and a',
            'page of this manual; the opening of each page maps the Python',
            'names to the C ones.']
    for name, top in modules:
        out.append('.SS ' + escape(name) + '(3)')
        out += roff_text(top)
    out += ['.SH SEE ALSO'] + ['.BR %s (3),' % n for n, _ in modules[:-1]]
    out.append('.BR %s (3)' % modules[-1][0])
    return out


def write(path, lines, written):
    text = '\n'.join(lines) + '\n'
    try:
        if open(path, encoding='utf-8').read() == text:
            written.add(path)
            return
    except OSError:
        pass
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    written.add(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--version', required=True)
    ap.add_argument('--outdir', required=True)
    ap.add_argument('--stamp')
    ap.add_argument('--install', action='store_true',
                    help='outdir is relative to $MESON_INSTALL_DESTDIR_PREFIX; '
                         'never remove a page there')
    ap.add_argument('headers', nargs='+')
    a = ap.parse_args()
    if a.install:
        a.outdir = os.path.join(os.environ['MESON_INSTALL_DESTDIR_PREFIX'], a.outdir)
    man3 = os.path.join(a.outdir, 'man3')
    man7 = os.path.join(a.outdir, 'man7')
    os.makedirs(man3, exist_ok=True)
    os.makedirs(man7, exist_ok=True)
    parsed = [(h, *split_header(h)) for h in a.headers]
    umbrella = [p for p in parsed if os.path.basename(p[0]) == 'libmp.h']
    parts = [p for p in parsed if os.path.basename(p[0]) != 'libmp.h']
    modules = [module_of(h) for h, _, _ in parts]
    written = set()
    seen = {}
    for h, top, groups in parts:
        mod = module_of(h)
        write(os.path.join(man3, mod + '.3'), module_page(h, top, groups, a.version, modules),
              written)
        for comment, code in groups:
            for name in names_of(code):
                if name in seen:
                    sys.exit('mkman.py: %s declared twice (%s, %s)' % (name, seen[name], h))
                seen[name] = h
                write(os.path.join(man3, name + '.3'),
                      function_page(name, mod, comment, code, a.version), written)
    top = umbrella[0][1] if umbrella else ['libmp']
    write(os.path.join(man7, 'libmp.7'),
          overview_page(top, [(module_of(h), t) for h, t, _ in parts], a.version), written)
    for d in (man3, man7) if not a.install else ():
        for f in os.listdir(d):
            if os.path.join(d, f) not in written:
                os.remove(os.path.join(d, f))
    if a.stamp:
        with open(a.stamp, 'w') as f:
            f.write('%d pages\n' % len(written))


if __name__ == '__main__':
    main()
