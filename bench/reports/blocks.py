"""Generated blocks: tables and figures written from records between `<!-- name:start -->` and
`<!-- name:end -->` in README.md or a page of its `docs/`, each wherever its markers are, so a
section can move between README and the documentation without its generator knowing. The
published tests read the same pages and compare each block with what the records give."""

from __future__ import annotations

from pathlib import Path


def replace_block(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise ValueError(f"no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def block(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


class Pages:
    """README.md and the markdown pages of the `docs/` beside it, read once; `replace` rewrites
    a block in the one page that holds its markers, `save` writes the pages it changed."""

    def __init__(self, readme: Path):
        readme = Path(readme)
        docs = readme.parent / "docs"
        paths = [readme, *sorted(docs.glob("**/*.md"))] if docs.is_dir() else [readme]
        self.texts = {p: p.read_text(encoding="utf-8") for p in paths}
        self.changed: set[Path] = set()

    def text(self) -> str:
        """Every page, one after another (each block's markers occur once in all of them)."""
        return "\n".join(self.texts.values())

    def holder(self, start: str) -> Path:
        found = [p for p, t in self.texts.items() if start in t]
        if len(found) != 1:
            raise ValueError(f"{start} is in {len(found)} of {', '.join(map(str, self.texts))}"
                             " (it must be in exactly one)")
        return found[0]

    def block(self, start: str, end: str) -> str:
        return block(self.texts[self.holder(start)], start, end)

    def replace(self, start: str, end: str, body: str) -> Path:
        path = self.holder(start)
        self.texts[path] = replace_block(self.texts[path], start, end, body)
        self.changed.add(path)
        return path

    def save(self) -> list[Path]:
        for path in sorted(self.changed):
            path.write_text(self.texts[path], encoding="utf-8")
        return sorted(self.changed)
