#!/usr/bin/env python3
"""The package-level dependency graph of the repository's BUILD files.

Reads every BUILD file under a root, takes each label a rule names (in deps,
srcs, data, hdrs, ...; visibility lists are not dependencies), and joins
the packages: package A depends on package B when a rule of A names a
target of B. Prints each cycle found and exits 1, or exits 0 when the graph
has none.

Test rules (*_test) are left out. Nothing depends on a test, so a test is a
leaf of the target graph and its dependencies can close no cycle there; but
unit tests sit next to the code they test and use the shared helpers of
//tests/testing, which depend on the code in turn, and counting them would
make every package with a unit test look cyclic. Helper libraries (testonly
or not) are counted like any library.

  python3 tests/build/package_graph.py [root]          # check for cycles
  python3 tests/build/package_graph.py --print [root]  # print the edges

A package that names its own targets (":foo" or "//pkg:foo") adds no edge.
External repositories ("@foo//...") are not part of the graph.
"""

import os
import re
import sys

# "//pkg", "//pkg:target", ":target" inside a string literal.
LABEL = re.compile(r'"(//[^":]*)?(:[^"]*)?"')
# A visibility list: its labels say who may depend, not what is depended on.
VISIBILITY = re.compile(r'(default_)?visibility\s*=\s*\[[^\]]*\]', re.S)
COMMENT = re.compile(r'#[^\n]*')


def packages(root):
    """Yields (package, BUILD file path) for every package under root."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs
                            if not d.startswith(('bazel-', '.')))
        for name in ('BUILD', 'BUILD.bazel'):
            if name in files:
                package = os.path.relpath(directory, root)
                yield ('' if package == '.' else package,
                       os.path.join(directory, name))
                break


# A rule call at the start of a line: "cc_library(".
RULE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)\(', re.M)


def rules(text):
    """Yields (kind, body) for each top-level call of a BUILD text."""
    for match in RULE.finditer(text):
        depth, i, quote = 0, match.end() - 1, None
        while i < len(text):
            c = text[i]
            if quote:
                if c == '\\':
                    i += 1
                elif c == quote:
                    quote = None
            elif c in '"\'':
                quote = c
            elif c == '(':
                depth += 1
            elif c == ')':
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield match.group(1), text[match.end():i]


def edges_of(build_text, package):
    """The packages that a BUILD file's rules, other than tests, depend on."""
    text = VISIBILITY.sub('', COMMENT.sub('', build_text))
    found = set()
    for kind, body in rules(text):
        if kind.endswith('_test'):
            continue
        found |= labels_of(body, package)
    return found


def labels_of(text, package):
    """The other packages named by the labels in `text`."""
    found = set()
    for match in LABEL.finditer(text):
        target_package, target = match.group(1), match.group(2)
        if target_package is None:
            continue  # ":target" or a plain string: this package
        dependency = target_package[2:]
        if dependency != package:
            found.add(dependency)
    return found


def graph(root):
    result = {}
    for package, path in packages(root):
        with open(path, encoding='utf-8') as f:
            result[package] = edges_of(f.read(), package)
    return result


def cycles(edges):
    """Every strongly connected component with more than one package
    (Tarjan's algorithm), each as a sorted list."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main(argv):
    print_edges = '--print' in argv
    args = [a for a in argv if a != '--print']
    root = args[0] if args else os.path.join(os.path.dirname(__file__), '..', '..')
    edges = graph(root)
    if print_edges:
        for package in sorted(edges):
            for dependency in sorted(edges[package]):
                print(f'//{package} -> //{dependency}')
    # A package named but not read: its BUILD file is missing from the
    # files given (under Bazel, its all_files is not in the test's data),
    # and its edges would go unchecked.
    unread = sorted({d for deps in edges.values() for d in deps} - set(edges))
    for package in unread:
        print(f'package //{package} is depended on but its BUILD file was not read')
    found = cycles(edges)
    for component in found:
        members = set(component)
        print('package cycle: ' + ', '.join('//' + p for p in component))
        for package in component:
            for dependency in sorted(edges[package] & members):
                print(f'  //{package} -> //{dependency}')
    if not found:
        print(f'{len(edges)} packages, no package-level cycle')
    return 1 if found or unread else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
