"""The dashboard's routes under ``/ui/``, added to the service's app.

Pages are documented in the API document too (tag ``dashboard pages``), as HTML answers:
every route the service serves is, and the contract fuzzer then walks them as well.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from controlplane.api.ratelimit import parse_limits
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes
from promptline.settings import Settings
from ui.actions import deploy_action, rollback_action, stop_action
from ui.compare_page import compare_page
from ui.handling import see_other
from ui.prompt_page import diff_page, prompt_page
from ui.prompts_page import prompts_page
from ui.render import RENDERER, UI_SETTINGS, Renderer
from ui.rollout_page import rollout_page
from ui.sign_in import get_sign_in, post_sign_in, post_sign_out

TAG = "dashboard pages (HTML)"
HTML = {"type": "string"}
ERROR_PAGES = {
    400: "A parameter or form field that does not parse; the page says which.",
    401: "A wrong, revoked or read-less key (sign-in).",
    403: "A form from another site, without its token, or without the deploy scope.",
    404: "No such prompt, version or baseline in the key's project.",
    409: "A concurrent change, or nothing to roll back or stop.",
    429: "Over a limit, with Retry-After.",
    503: "The analytics store is unreachable, with Retry-After.",
}


def _operation(
    summary: str, description: str, *, form: bool = False, session: bool = True
) -> Operation:
    answers = {
        200: Answer("The page.", schema=HTML, content_type="text/html"),
        303: Answer(
            "To the sign-in page without a session, or to the next page after a form.",
            schema=HTML,
            content_type="text/html",
            headers={"Location": "Where to go."},
        ),
    }
    for status, meaning in ERROR_PAGES.items():
        if status != 401 or not session:
            answers[status] = Answer(meaning, schema=HTML, content_type="text/html")
    return Operation(
        summary=summary,
        description=description,
        tag=TAG,
        scope=None,
        answers=answers,
        session=session,
    )


async def home(_request: web.Request) -> web.Response:
    """``/ui/`` is the list of prompts."""
    return see_other("/ui/prompts")


async def stylesheet(request: web.Request) -> web.Response:
    """The one stylesheet, cached by the browser (its URL carries its version)."""
    return web.Response(
        text=request.app[RENDERER].stylesheet,
        content_type="text/css",
        headers={hdrs.CACHE_CONTROL: "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application, settings: Settings) -> None:
    """Register the pages; their templates are read as the app starts."""
    parse_limits(settings.ui_sign_in_limit)  # a bad setting fails at start, not at sign-in
    app[RENDERER] = renderer = Renderer()
    app.on_startup.append(renderer.started)
    app[UI_SETTINGS] = settings
    router = served_routes(app)
    router.add_get(
        "/ui", home, _operation("Dashboard", "Redirects to the list of prompts.", session=False)
    )
    router.add_get(
        "/ui/", home, _operation("Dashboard", "Redirects to the list of prompts.", session=False)
    )
    router.add_get(
        "/ui/static/style.css",
        stylesheet,
        Operation(
            summary="Dashboard stylesheet",
            description="The dashboard's CSS; no other asset is needed.",
            tag=TAG,
            scope=None,
            answers={200: Answer("CSS.", schema=HTML, content_type="text/css")},
        ),
    )
    router.add_get(
        "/ui/sign-in", get_sign_in, _operation("Sign in", "The sign-in form.", session=False)
    )
    router.add_post(
        "/ui/sign-in",
        post_sign_in,
        _operation(
            "Sign in with an API key",
            "Exchanges a key (form field `key`) for a session cookie; 401 page for a wrong key, "
            "429 past the per-address limit.",
            form=True,
            session=False,
        ),
    )
    router.add_post(
        "/ui/sign-out",
        post_sign_out,
        _operation("Sign out", "Ends the session.", form=True, session=False),
    )
    router.add_get("/ui/prompts", prompts_page, _operation("Prompts", "Every prompt."))
    router.add_get(
        "/ui/prompts/{prompt_id}", prompt_page, _operation("A prompt", "Versions and timeline.")
    )
    router.add_get(
        "/ui/prompts/{prompt_id}/diff",
        diff_page,
        _operation("Diff", "A line-by-line diff of versions `a` and `b`."),
    )
    router.add_get(
        "/ui/prompts/{prompt_id}/compare",
        compare_page,
        _operation("Compare", "Versions against a baseline: table, intervals, series."),
    )
    router.add_get(
        "/ui/prompts/{prompt_id}/rollout",
        rollout_page,
        _operation("Rollout", "The latest guarded rollout as the guard sees it."),
    )
    for path, handler, summary in (
        ("/ui/prompts/{prompt_id}/deploy", deploy_action, "Deploy a split"),
        ("/ui/prompts/{prompt_id}/rollback", rollback_action, "Roll back"),
        ("/ui/prompts/{prompt_id}/rollout/stop", stop_action, "Stop a guarded rollout"),
    ):
        router.add_post(
            path,
            handler,
            _operation(summary, "Shows what will change; writes with `confirm=yes`.", form=True),
        )
