"""Account passwords: the login prompt for a nick that is an account, and `/register`.

Both are modal screens with masked inputs. A password never goes into the
log, a notice, the composer's history or the settings file; it is handed to
the caller in an `AccountLogin` (whose repr hides it) and, only if the user
ticks the box, to the system keyring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from protocol.fields import AccountPassword
from protocol.limits import MAX_ACCOUNT_PASSWORD, MIN_ACCOUNT_PASSWORD

from ..text import literal

__all__ = ["AccountLogin", "MaskedInput", "PasswordScreen", "RegisterScreen", "password_problem"]

KEYRING_LABEL = "Remember it in the system keyring"
_PASSWORD: TypeAdapter[str] = TypeAdapter(AccountPassword)


@dataclass(frozen=True, slots=True)
class AccountLogin:
    """What a prompt returns: the password, and whether to keep it in the keyring."""

    password: str = field(repr=False)
    remember: bool = False


def password_problem(password: str) -> str | None:
    """Why the server would refuse `password` for an account (the protocol's rule), or None."""
    try:
        _PASSWORD.validate_python(password)
    except ValidationError as exc:
        return str(exc.errors(include_url=False)[0]["msg"])
    return None


class MaskedInput(Input):
    """A password field; with `then`, Enter moves on to that field. Keys that came in
    the same read as that Enter, or as a Tab or Shift+Tab that moves to another field
    (a fast typist, a paste, `tmux send-keys 'pw' Tab 'pw'`), follow it there instead
    of staying in this field: they were queued here before the focus moved."""

    def __init__(self, *, id: str, then: str | None = None) -> None:
        super().__init__(password=True, id=id, compact=True)
        self._then = then
        self._handoff: Input | None = None

    async def _on_key(self, event: events.Key) -> None:
        if self._handoff is not None:  # queued behind the Enter: the next field's
            event.stop()
            event.prevent_default()
            self._handoff.post_message(events.Key(event.key, event.character))
            return
        if event.key == "enter" and self._then is not None:
            event.stop()
            event.prevent_default()
            self._hand_off(self.screen.query_one(f"#{self._then}", Input))
            return
        if event.key in ("tab", "shift+tab"):
            chain = self.screen.focus_chain
            if self in chain:
                step = 1 if event.key == "tab" else -1
                following = chain[(chain.index(self) + step) % len(chain)]
                if isinstance(following, Input):  # a field: the keys after the Tab are its
                    event.stop()
                    event.prevent_default()
                    self._hand_off(following)
                    return
        await super()._on_key(event)

    def _hand_off(self, following: Input) -> None:
        """Focus `following`; the keys already queued here go to it, in order."""
        self._handoff = following
        following.focus()
        self.call_later(self._handed_off)  # runs after the keys queued now

    def _handed_off(self) -> None:
        self._handoff = None


class PasswordScreen(ModalScreen[AccountLogin | None]):
    """`nick` is an account: ask for its password. None: the user wants another nick."""

    BINDINGS = [Binding("escape", "change_nick", "Another nick")]

    def __init__(self, nick: str, where: str, problem: str | None, *, remember: bool) -> None:
        super().__init__()
        self._nick = nick
        self._where = where
        self._problem = problem
        self._remember = remember

    def compose(self) -> ComposeResult:
        with Vertical(id="account-box", classes="account-box"):
            yield Label(
                literal(f"{self._nick} is an account on {self._where}. Its password:"),
                id="account-title",
            )
            yield MaskedInput(id="account-password")
            yield Checkbox(KEYRING_LABEL, self._remember, id="keyring", compact=True)
            yield Static(literal(self._problem or ""), id="account-problem")
            with Horizontal(classes="account-buttons"):
                yield Button("Log in", variant="primary", id="login")
                yield Button("Another nick (Esc)", id="other-nick")

    def on_mount(self) -> None:
        self.query_one("#account-password", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#login")
    def _login(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        password = self.query_one("#account-password", Input).value
        if not password:
            self._show("type the password of the account, or Esc for another nick")
            return
        self.dismiss(AccountLogin(password, self.query_one("#keyring", Checkbox).value))

    @on(Button.Pressed, "#other-nick")
    def _other(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_change_nick()

    def action_change_nick(self) -> None:
        self.dismiss(None)

    def _show(self, text: str) -> None:
        self.query_one("#account-problem", Static).update(literal(text))
        self.query_one("#account-password", Input).focus()


class RegisterScreen(ModalScreen[AccountLogin | None]):
    """`/register`: a new password, typed twice. None: cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, nick: str) -> None:
        super().__init__()
        self._nick = nick

    def compose(self) -> ComposeResult:
        with Vertical(id="register-box", classes="account-box"):
            yield Label(
                literal(
                    f"Make {self._nick} an account: only this password logs in as "
                    f"{self._nick} from then on ({MIN_ACCOUNT_PASSWORD}-{MAX_ACCOUNT_PASSWORD} "
                    "characters)."
                ),
                id="register-title",
            )
            yield Label("Password")
            yield MaskedInput(id="new-password", then="new-password-again")
            yield Label("The same again")
            yield MaskedInput(id="new-password-again")
            yield Checkbox(KEYRING_LABEL, False, id="keyring", compact=True)
            yield Static("", id="register-problem")
            with Horizontal(classes="account-buttons"):
                yield Button("Register", variant="primary", id="register")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#new-password", Input).focus()

    @on(Input.Submitted, "#new-password-again")
    @on(Button.Pressed, "#register")
    def _register(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        first = self.query_one("#new-password", Input)
        again = self.query_one("#new-password-again", Input)
        problem = password_problem(first.value)
        if problem is not None:
            self._show(problem, first)
            return
        if again.value != first.value:
            again.value = ""
            self._show("the two passwords differ: type it again", again)
            return
        self.dismiss(AccountLogin(first.value, self.query_one("#keyring", Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show(self, text: str, target: Input) -> None:
        self.query_one("#register-problem", Static).update(literal(text))
        target.focus()
