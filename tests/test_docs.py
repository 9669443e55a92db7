"""The docs hold together: every page in docs/ is linked from the README, and every relative link in the README
and the pages leads to a file that exists and, with an anchor, to a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest
from helpers.configs import REPO

PAGES = sorted((REPO / "docs").glob("*.md"))
DOCUMENTS = [REPO / "README.md", *PAGES]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def outside_code_blocks(path: Path) -> str:
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def prose(path: Path) -> str:
    """The text outside code blocks and inline code, where links are links."""
    return re.sub(r"`[^`\n]*`", "", outside_code_blocks(path))


def relative_links(path: Path) -> Iterator[Tuple[Path, str]]:
    """(file, anchor) of each link that is not to the web; a link to a heading of the same file names that file."""
    for target in LINK.findall(prose(path)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        yield (path.parent / file).resolve() if file else path.resolve(), anchor


def anchors(path: Path) -> Set[str]:
    """GitHub's anchors for a markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    found: Set[str] = set()
    # Inline code in a heading is part of its anchor, less the backticks.
    for heading in re.findall(r"^#{1,6} +(.+?) *$", outside_code_blocks(path), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def test_every_docs_page_is_linked_from_the_readme():
    linked = {file for file, _ in relative_links(REPO / "README.md")}
    assert PAGES, "docs/ holds no page"
    missing: List[str] = [page.name for page in PAGES if page.resolve() not in linked]
    assert not missing, f"link these docs pages from README.md: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document):
    broken = []
    for file, anchor in relative_links(document):
        if not file.exists():
            broken.append(f"{file.relative_to(REPO) if file.is_relative_to(REPO) else file}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{file.relative_to(REPO)}#{anchor}: no such heading")
    assert not broken, f"{document.relative_to(REPO)} has broken links: {broken}"
