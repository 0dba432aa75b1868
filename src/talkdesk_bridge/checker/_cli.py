"""The `check` and `lookup` commands. Heavy imports wait inside them: `--help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["check", "lookup", "register"]

_PATH_HELP = "Path (relative to URL) of the {} endpoint, if not ours."


def _usage(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Never echo the item: its value is a credential.
            raise typer.BadParameter(
                f"expected KEY=VALUE (got {key.strip() or '?'}…)", param_hint=option
            )
        pairs[key.strip()] = value
    return pairs


def _read_configuration(path: Path) -> Any:
    import orjson

    from ._plan import PlanError, parse_configuration

    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise _usage(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise _usage(f"{path} is not JSON: {exc.msg}") from None
    try:
        return parse_configuration(document, authoritative_urls=True)
    except PlanError as exc:
        raise _usage(f"{path}: {exc}") from None


def check(
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="URL",
            help="The bridge's base URL for one integration, e.g. http://127.0.0.1:8000/sql.",
            show_default=False,
        ),
    ] = None,
    auth: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="A credential field sent in `auth` (repeat)."),
    ] = None,
    bad_auth: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="Replace this field in the bad credentials (default: every value randomized).",
        ),
    ] = None,
    actions: Annotated[
        bool, typer.Option("--actions", help="Also run every action (creates real records!).")
    ] = False,
    contacts_sample: Annotated[
        int, typer.Option(min=0, help="Synced contacts to retrieve interactions for.")
    ] = 5,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable JSON report.")
    ] = False,
    configuration: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="Configuration JSON whose absolute endpoint URLs are called instead.",
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, metavar="FILE", help="Keep synced contacts in this SQLite file."
        ),
    ] = None,
    max_pages: Annotated[
        int, typer.Option(min=1, help="Pages after which a sync counts as an endless loop.")
    ] = 10_000,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each answer.")
    ] = 30.0,
    auth_validation_path: Annotated[
        str | None, typer.Option(help=_PATH_HELP.format("auth validation"), show_default=False)
    ] = None,
    contact_sync_path: Annotated[
        str | None, typer.Option(help=_PATH_HELP.format("contact sync"), show_default=False)
    ] = None,
    interaction_update_path: Annotated[
        str | None,
        typer.Option(help=_PATH_HELP.format("interaction retrieval"), show_default=False),
    ] = None,
    agent_sync_path: Annotated[
        str | None, typer.Option(help=_PATH_HELP.format("agent sync"), show_default=False)
    ] = None,
    action_path: Annotated[
        str | None,
        typer.Option(help="Path of each action, with {name} (default: actions/{name})."),
    ] = None,
) -> None:
    """Play Talkdesk against a bridge and judge every answer against the contract.

    Exit status: 0 when no check failed, 1 when one did, 2 for usage errors.
    """
    import asyncio

    from rich.console import Console

    from ._plan import PlanError
    from ._report import RichProgress, render_json, render_text
    from ._runner import CheckOptions, run_check
    from ._store import StoreError

    if url is None and configuration is None:
        raise _usage("give the bridge URL (or --configuration FILE)")
    paths = {
        feature: path
        for feature, path in (
            ("auth_validation", auth_validation_path),
            ("contact_sync", contact_sync_path),
            ("interaction_update", interaction_update_path),
            ("agent_sync", agent_sync_path),
        )
        if path
    }
    options = CheckOptions(
        url=url,
        auth=_pairs(auth or [], "--auth"),
        bad_auth=_pairs(bad_auth, "--bad-auth") if bad_auth else None,
        actions=actions,
        contacts_sample=contacts_sample,
        configuration=_read_configuration(configuration) if configuration else None,
        store=store,
        max_pages=max_pages,
        timeout=timeout,
        paths=paths,
        action_path=action_path,
    )
    try:
        with RichProgress(Console(stderr=True)) as progress:
            report = asyncio.run(run_check(options, progress=progress))
    except (PlanError, StoreError) as exc:
        raise _usage(str(exc)) from None
    if json_output:
        typer.echo(render_json(report))
    else:
        render_text(report, Console())
    raise typer.Exit(1 if report.failed else 0)


def lookup(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A store written by `check --store`.")
    ],
    phone: Annotated[
        str, typer.Argument(metavar="PHONE", help="The caller's number, in any common format.")
    ],
    region: Annotated[
        str,
        typer.Option(
            metavar="CC", help="Region for numbers without a country code (ISO 3166 alpha-2)."
        ),
    ] = "US",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Identify a caller as Talkdesk does: match the number, in E.164, against synced contacts.

    Exit status: 0 when a contact matches, 1 when none does, 2 for usage errors.
    """
    import orjson

    from .._phones import normalize_phone
    from ._store import StoreError
    from ._store import lookup as find

    if len(region) != 2 or not region.isalpha():
        raise typer.BadParameter("a two-letter region code, e.g. US", param_hint="--region")
    region = region.upper()
    try:
        found = find(file, phone, region)
    except StoreError as exc:
        raise _usage(str(exc)) from None
    caller = normalize_phone(phone, region)
    if json_output:
        typer.echo(
            orjson.dumps({"caller": caller, "contacts": found}, option=orjson.OPT_INDENT_2).decode()
        )
    else:
        _print_contacts(caller, found)
    raise typer.Exit(0 if found else 1)


def _print_contacts(caller: str, found: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not found:
        console.print(Text(f"No contact matches {caller}."))
        return
    table = Table(title=f"Contacts matching {caller}", title_justify="left")
    for column in ("id", "name", "company", "phones", "emails", "url"):
        table.add_column(column)

    def cell(value: object) -> Text:
        if isinstance(value, list):
            return Text("\n".join(str(v) for v in value))
        return Text("" if value is None else str(value))

    for contact in found:
        table.add_row(
            *(cell(contact.get(k)) for k in ("id", "name", "company", "phones", "emails", "url"))
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `check` and `lookup` to the `talkdesk-bridge` command."""
    app.command("check")(check)
    app.command("lookup")(lookup)
