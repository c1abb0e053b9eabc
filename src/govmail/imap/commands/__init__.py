"""The IMAP command table: every command, the states it is allowed in, and its behaviour
flags, in one place (as Dovecot's ``imap-commands.c``)."""

from __future__ import annotations

from dataclasses import dataclass

from govmail.imap.commands import connection, folders, messages
from govmail.imap.commands.fetch import cmd_fetch
from govmail.imap.session import Handler, Session, State

ANY = frozenset(State) - {State.LOGOUT}
NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True)
class Command:
    handler: Handler
    states: frozenset[State]
    # Refers to messages by number: no EXPUNGE may be announced while answering it
    # (RFC 9051 §7.5.1), unless it is the UID form.
    uses_seqs: bool = False
    # Always bring the selected folder up to date before the tagged reply (NOOP's job),
    # not only when this process saw a change.
    syncs: bool = False


class CommandTable:
    def __init__(self, commands: dict[str, Command]) -> None:
        self._commands = commands

    def find(self, name: str) -> Command | None:
        return self._commands.get(name)

    async def line(self, session: Session, data: bytes) -> None:
        """A line outside any command: IDLE's DONE or an AUTHENTICATE response."""
        if session.idle_tag is not None:
            await messages.idle_done(session, data)
        elif session.authenticating is not None:
            await connection.authenticate_response(session, data)
        else:
            await session.reply("*", connection.BAD_LINE)


COMMANDS = CommandTable(
    {
        "CAPABILITY": Command(connection.cmd_capability, ANY),
        "NOOP": Command(connection.cmd_noop, ANY, syncs=True),
        "LOGOUT": Command(connection.cmd_logout, ANY),
        "ID": Command(connection.cmd_id, ANY),
        "ENABLE": Command(connection.cmd_enable, AUTH),
        "STARTTLS": Command(connection.cmd_starttls, NOT_AUTH),
        "LOGIN": Command(connection.cmd_login, NOT_AUTH),
        "AUTHENTICATE": Command(connection.cmd_authenticate, NOT_AUTH),
        "NAMESPACE": Command(folders.cmd_namespace, AUTH),
        "SELECT": Command(folders.cmd_select, AUTH),
        "EXAMINE": Command(folders.cmd_select, AUTH),
        "CREATE": Command(folders.cmd_create, AUTH),
        "DELETE": Command(folders.cmd_delete, AUTH),
        "RENAME": Command(folders.cmd_rename, AUTH),
        "SUBSCRIBE": Command(folders.cmd_subscribe, AUTH),
        "UNSUBSCRIBE": Command(folders.cmd_subscribe, AUTH),
        "LIST": Command(folders.cmd_list, AUTH),
        "LSUB": Command(folders.cmd_list, AUTH),
        "STATUS": Command(folders.cmd_status, AUTH),
        "APPEND": Command(folders.cmd_append, AUTH),
        "GETQUOTAROOT": Command(folders.cmd_getquotaroot, AUTH),
        "GETQUOTA": Command(folders.cmd_getquota, AUTH),
        "IDLE": Command(messages.cmd_idle, AUTH, syncs=True),
        "CHECK": Command(messages.cmd_check, SELECTED, syncs=True),
        "CLOSE": Command(messages.cmd_close, SELECTED),
        "UNSELECT": Command(messages.cmd_unselect, SELECTED),
        "EXPUNGE": Command(messages.cmd_expunge, SELECTED),
        "SEARCH": Command(messages.cmd_search, SELECTED, uses_seqs=True),
        "FETCH": Command(cmd_fetch, SELECTED, uses_seqs=True),
        "STORE": Command(messages.cmd_store, SELECTED, uses_seqs=True),
        "COPY": Command(messages.cmd_copy, SELECTED),
        "MOVE": Command(messages.cmd_move, SELECTED),
    }
)
