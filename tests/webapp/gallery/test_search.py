"""My gallery: prompt search, filters, sort and pages, all in the query string."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.support import sign_in


def prompts(client, query: str = "") -> list[str]:
    """The prompts on a gallery page, in order."""
    html = client.get(f"/gallery{query}").get_data(as_text=True)
    return re.findall(r'<span class="form-check-label d-block text-truncate card-text">(?:★ )?(.*?)</span>', html)


@pytest.mark.db
def test_search_filters_and_sort_in_the_query_string(app, two_people):
    client = sign_in(app, "ada@example.com")
    assert prompts(client) == ["red sea at dawn", "an owl at night", "a red fox in snow"]
    assert prompts(client, "?q=RED") == ["red sea at dawn", "a red fox in snow"]  # never Bob's
    assert prompts(client, "?q=red+fox") == ["a red fox in snow"]
    assert prompts(client, '?q="fox*+OR') == []
    assert prompts(client, "?sort=oldest") == ["a red fox in snow", "an owl at night", "red sea at dawn"]
    assert prompts(client, "?starred=1") == ["an owl at night"]
    assert prompts(client, "?starred=0&sort=oldest") == ["a red fox in snow", "red sea at dawn"]
    assert prompts(client, "?published=1") == ["red sea at dawn"]
    assert prompts(client, "?published=0&q=red") == ["a red fox in snow"]
    assert prompts(client, "?since=2026-03-05&until=2026-03-05") == ["an owl at night"]  # the whole day counts
    assert prompts(client, "?since=2026-03-02") == ["red sea at dawn", "an owl at night"]
    assert prompts(client, "?model=easel-tiny&q=owl") == ["an owl at night"]
    assert prompts(client, "?model=other") == []
    # Nonsense in the query string is ignored, never an error.
    assert prompts(client, "?since=yesterday&starred=maybe&sort=sideways&page=x") == prompts(client)
    html = client.get("/gallery?q=nothing").get_data(as_text=True)
    assert 'id="empty"' in html and "No image matches" in html


def test_pages_keep_the_filters(app, make_user, make_image):
    ada = make_user("ada@example.com")
    for n in range(30):
        make_image(ada, prompt=f"cat number {n}", created_at=datetime(2026, 1, 1, 0, n))
    make_image(ada, prompt="a dog")
    client = sign_in(app, "ada@example.com")
    html = client.get("/gallery?q=cat&sort=oldest").get_data(as_text=True)
    assert "Page 1 of 2" in html
    [next_link] = re.findall(r'href="(/gallery\?[^"]*page=2[^"]*)"', html)
    assert "q=cat" in next_link and "sort=oldest" in next_link
    second = prompts(client, next_link.removeprefix("/gallery").replace("&amp;", "&"))
    assert second == [f"cat number {n}" for n in range(24, 30)]
