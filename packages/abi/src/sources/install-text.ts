/**
 * What `make headers_install` does to a uapi header that matters to a parser
 * (scripts/headers_install.sh in a Linux tree), each edit keeping the line count so that recorded
 * lines are the lines of the tree's own file.
 */
export function installedHeaderText(text: string): string {
  return text
    .split('\n')
    .map((line) =>
      line
        // Sparse annotations: no meaning to a compiler outside the kernel.
        .replace(/([\s(])(__user|__force|__iomem)(?=\s)/g, '$1')
        .replace(/\b__attribute_const__(?=\s|$)/g, '')
        // <linux/compiler.h> and <linux/compiler_types.h> are kernel-only; the install drops the include.
        .replace(/^#\s*include\s*<linux\/compiler(_types)?\.h>.*$/, '')
        .replace(/(^|[^A-Za-z0-9_])__packed(?=[^A-Za-z0-9_]|$)/g, '$1__attribute__((packed))')
        // The include guards lose their _UAPI prefix, as installed headers have them.
        .replace(/^#(ifndef|define|endif\s*\/\*)\s*_UAPI/, '#$1 '),
    )
    .join('\n');
}
