"""Load profiles for the wallet service.

Every user creates the wallets it uses (``POST /api/v1/wallets``); no wallet id is
ever hard-coded, so the file runs against an empty database.

User classes (pick one or more by name, or let locust mix them by ``weight``):

* ``HotWalletUser``    -- all users of a process DEPOSIT "1.00" into ONE shared
                          wallet: row-lock contention on a single balance.
* ``ManyWalletsUser``  -- each user has its own wallet and deposits and withdraws
                          small amounts; 400 INSUFFICIENT_FUNDS is an expected answer.
* ``ReadHeavyUser``    -- deposits once, then mostly reads (the Redis cache path).
* ``FixedRateUser``    -- a fixed request rate per user (``constant_throughput``),
                          LOCUST_RATE_PER_USER requests/s (default 10).
* ``TransferUser``     -- each user funds its own wallet (LOCUST_TRANSFER_FUNDING,
                          default "10000.00"), then pays ONE merchant wallet shared by the
                          users of a process and, less often, the other users' wallets
                          (``POST /api/v1/transfers``, contract v2), tops up now and then;
                          400 INSUFFICIENT_FUNDS is an expected answer.
* ``HoldUser``         -- each user funds its own wallet (LOCUST_HOLD_FUNDING, default
                          "1000.00"), places holds on it (half of them paying ONE merchant
                          wallet shared by the users of a process, the others captured
                          as withdrawals) and captures (whole or part) or voids each one
                          once, reads them and its wallet's held and available balances,
                          tops up now and then; at most MAX_OPEN_HOLDS of its holds are
                          held at once. 400 INSUFFICIENT_FUNDS on a new hold is an
                          expected answer.

Run headless against a local service::

    locust -f perf/locustfile.py --headless -u 64 -r 64 -t 30s \\
        --host http://127.0.0.1:5000 HotWalletUser
    locust -f perf/locustfile.py --headless -u 64 -r 64 -t 30s \\
        --host http://127.0.0.1:5000 TransferUser
    locust -f perf/locustfile.py --headless -u 64 -r 64 -t 30s \\
        --host http://127.0.0.1:5000 HoldUser
    locust -f perf/locustfile.py --headless -u 100 -r 20 -t 1m \\
        --host http://127.0.0.1:5000                      # weighted mix of all
    LOCUST_RATE_PER_USER=5 locust -f perf/locustfile.py --headless -u 50 -r 50 \\
        -t 1m --host http://127.0.0.1:5000 FixedRateUser  # ~250 requests/s

With the compose stack, ``docker compose up --build locust`` and open
http://localhost:8089 (``--class-picker`` lets the web UI choose classes).

Environment: LOCUST_RATE_PER_USER (FixedRateUser, requests/s, default 10),
LOCUST_TRANSFER_FUNDING (TransferUser's first deposit, default "10000.00"),
LOCUST_HOLD_FUNDING (HoldUser's first deposit, default "1000.00"),
LOCUST_MAX_WAIT (seconds between tasks of the other classes, default 0.1) and
LOCUST_API_KEY (sent as ``Authorization: Bearer <key>`` on every request, for a
service with WALLET_API_KEYS; unset or empty, no header).
"""

from __future__ import annotations

import os
import random
from collections import deque
from typing import Any

from gevent.lock import BoundedSemaphore
from locust import HttpUser, between, constant_throughput, task
from locust.clients import HttpSession, ResponseContextManager
from locust.exception import StopUser

WALLETS = "/api/v1/wallets"
WALLET_NAME = "/api/v1/wallets/[id]"
OPERATION_NAME = "/api/v1/wallets/[id]/operation"
OPERATIONS_NAME = "/api/v1/wallets/[id]/operations"
TRANSFERS = "/api/v1/transfers"
HOLDS_NAME = "/api/v1/wallets/[id]/holds"
HOLD_NAME = "/api/v1/holds/[id]"
CAPTURE_NAME = "/api/v1/holds/[id]/capture"
VOID_NAME = "/api/v1/holds/[id]/void"
MAX_OPEN_HOLDS = 20  # a HoldUser's holds still held at once; past it, it settles one first
KNOWN_HOLDS = 50  # how many of its latest holds, settled or not, a HoldUser reads from

RATE_PER_USER = float(os.environ.get("LOCUST_RATE_PER_USER", "10"))
MAX_WAIT = float(os.environ.get("LOCUST_MAX_WAIT", "0.1"))
TRANSFER_FUNDING = os.environ.get("LOCUST_TRANSFER_FUNDING", "10000.00")
HOLD_FUNDING = os.environ.get("LOCUST_HOLD_FUNDING", "1000.00")
API_KEY = os.environ.get("LOCUST_API_KEY", "").strip()


def _json(response: ResponseContextManager) -> dict[str, Any]:
    """The response body as a JSON object, or {} when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(response: ResponseContextManager) -> str:
    """Status and the start of the body, for a failure message."""
    return f"{response.status_code} {response.text[:200]}"


def create_wallet(client: HttpSession) -> str | None:
    """POST /api/v1/wallets; the new wallet's id, or None (recorded as a failure)."""
    with client.post(WALLETS, name=WALLETS, catch_response=True) as response:
        wallet_id = _json(response).get("id")
        if response.status_code != 201 or not isinstance(wallet_id, str):
            response.failure(f"create wallet: {_describe(response)}")
            return None
        response.success()
        return wallet_id


def operate(client: HttpSession, wallet_id: str, operation_type: str, amount: str) -> None:
    """POST one operation; 200 succeeds, so does INSUFFICIENT_FUNDS on a WITHDRAW."""
    with client.post(
        f"{WALLETS}/{wallet_id}/operation",
        json={"operationType": operation_type, "amount": amount},
        name=OPERATION_NAME,
        catch_response=True,
    ) as response:
        if response.status_code == 200 or _refused_withdraw(response, operation_type):
            response.success()
        else:
            response.failure(f"{operation_type}: {_describe(response)}")


def _refused_withdraw(response: ResponseContextManager, operation_type: str) -> bool:
    """A WITHDRAW larger than the balance is a correct answer, not an error."""
    return operation_type == "WITHDRAW" and _insufficient_funds(response)


def _insufficient_funds(response: ResponseContextManager) -> bool:
    return response.status_code == 400 and _json(response).get("code") == "INSUFFICIENT_FUNDS"


def transfer(client: HttpSession, payer: str, payee: str, amount: str) -> None:
    """POST one transfer; 201 succeeds, so does INSUFFICIENT_FUNDS (a payer spent out)."""
    with client.post(
        TRANSFERS,
        json={"fromWalletId": payer, "toWalletId": payee, "amount": amount},
        name=TRANSFERS,
        catch_response=True,
    ) as response:
        if response.status_code == 201 or _insufficient_funds(response):
            response.success()
        else:
            response.failure(f"transfer: {_describe(response)}")


def place_hold(
    client: HttpSession, wallet_id: str, amount: str, payee: str | None = None
) -> str | None:
    """POST a hold (a capture pays ``payee``, or is a withdrawal without one); its id on 201.
    INSUFFICIENT_FUNDS (a wallet held or spent out) succeeds too, with no hold; anything else
    is a failure."""
    body = {"amount": amount} if payee is None else {"amount": amount, "toWalletId": payee}
    with client.post(
        f"{WALLETS}/{wallet_id}/holds",
        json=body,
        name=HOLDS_NAME,
        catch_response=True,
    ) as response:
        hold_id = _json(response).get("id")
        if response.status_code == 201 and isinstance(hold_id, str):
            response.success()
            return hold_id
        if _insufficient_funds(response):
            response.success()
        else:
            response.failure(f"place hold: {_describe(response)}")
        return None


def settle_hold(client: HttpSession, hold_id: str, action: str, body: dict[str, str]) -> None:
    """POST a capture or a void of a hold still held; anything but 200 is a failure (a hold
    settled twice, 409 HOLD_NOT_ACTIVE, included: each is settled once)."""
    name = CAPTURE_NAME if action == "capture" else VOID_NAME
    with client.post(
        f"/api/v1/holds/{hold_id}/{action}", json=body, name=name, catch_response=True
    ) as response:
        if response.status_code == 200:
            response.success()
        else:
            response.failure(f"{action} hold: {_describe(response)}")


def part_of(amount: str) -> str:
    """A random amount from 0.01 to ``amount`` (a two-decimal string), for a partial capture."""
    cents = random.randint(1, int(amount.replace(".", "")))
    return f"{cents // 100}.{cents % 100:02d}"


def get_ok(client: HttpSession, path: str, name: str) -> None:
    """GET a path and count anything but 200 as a failure."""
    with client.get(path, name=name, catch_response=True) as response:
        if response.status_code == 200:
            response.success()
        else:
            response.failure(f"GET {name}: {_describe(response)}")


def small_amount() -> str:
    """A random amount between 0.01 and 5.00, as the contract's decimal string."""
    cents = random.randint(1, 500)
    return f"{cents // 100}.{cents % 100:02d}"


class WalletUser(HttpUser):
    """Base class: owns one wallet, created in on_start."""

    abstract = True
    wait_time = between(0, MAX_WAIT)
    wallet_id: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if API_KEY:  # here, not in on_start: a subclass's on_start may not call ours
            self.client.headers["Authorization"] = f"Bearer {API_KEY}"

    def on_start(self) -> None:
        wallet_id = create_wallet(self.client)
        if wallet_id is None:
            raise StopUser()
        self.wallet_id = wallet_id

    def deposit(self, amount: str) -> None:
        operate(self.client, self.wallet_id, "DEPOSIT", amount)

    def withdraw(self, amount: str) -> None:
        operate(self.client, self.wallet_id, "WITHDRAW", amount)

    def get_wallet(self) -> None:
        get_ok(self.client, f"{WALLETS}/{self.wallet_id}", WALLET_NAME)


class HotWalletUser(WalletUser):
    """All users of this class in one process share ONE wallet and deposit into it."""

    weight = 1
    _shared_wallet_id: str | None = None
    _shared_lock = BoundedSemaphore()

    def on_start(self) -> None:
        self.wallet_id = self._shared_wallet()

    def _shared_wallet(self) -> str:
        """The process-wide hot wallet, created by the first user that needs it."""
        cls = HotWalletUser
        with cls._shared_lock:
            if cls._shared_wallet_id is None:
                cls._shared_wallet_id = create_wallet(self.client)
            if cls._shared_wallet_id is None:
                raise StopUser()
            return cls._shared_wallet_id

    @task(10)
    def deposit_one(self) -> None:
        self.deposit("1.00")

    @task(1)
    def read(self) -> None:
        self.get_wallet()


class ManyWalletsUser(WalletUser):
    """Each user deposits into and withdraws from its own wallet."""

    weight = 4

    @task(3)
    def deposit_small(self) -> None:
        self.deposit(small_amount())

    @task(2)
    def withdraw_small(self) -> None:
        self.withdraw(small_amount())

    @task(1)
    def read(self) -> None:
        self.get_wallet()


class ReadHeavyUser(WalletUser):
    """Deposits once, then mostly reads its wallet (served from the cache when warm)."""

    weight = 4

    def on_start(self) -> None:
        super().on_start()
        self.deposit("100.00")

    @task(20)
    def read(self) -> None:
        self.get_wallet()

    @task(2)
    def read_operations(self) -> None:
        get_ok(
            self.client,
            f"{WALLETS}/{self.wallet_id}/operations?limit=10",
            OPERATIONS_NAME,
        )

    @task(1)
    def list_wallets(self) -> None:
        get_ok(self.client, f"{WALLETS}?limit=20", WALLETS)


class FixedRateUser(WalletUser):
    """A steady LOCUST_RATE_PER_USER requests/s per user, whatever the latency."""

    weight = 1
    wait_time = constant_throughput(RATE_PER_USER)

    @task(2)
    def deposit_small(self) -> None:
        self.deposit(small_amount())

    @task(1)
    def withdraw_small(self) -> None:
        self.withdraw(small_amount())

    @task(2)
    def read(self) -> None:
        self.get_wallet()


class TransferUser(WalletUser):
    """A funded payer: pays the process's one merchant wallet, and the other payers."""

    weight = 2
    _merchant_id: str | None = None
    _merchant_lock = BoundedSemaphore()
    _payers: list[str] = []  # the wallets of this class's running users in this process
    merchant_id: str = ""

    def on_start(self) -> None:
        super().on_start()
        self.deposit(TRANSFER_FUNDING)
        self.merchant_id = self._merchant()
        TransferUser._payers.append(self.wallet_id)

    def on_stop(self) -> None:
        if self.wallet_id in TransferUser._payers:
            TransferUser._payers.remove(self.wallet_id)

    def _merchant(self) -> str:
        """The process-wide merchant wallet, created by the first user that needs it."""
        cls = TransferUser
        with cls._merchant_lock:
            if cls._merchant_id is None:
                cls._merchant_id = create_wallet(self.client)
            if cls._merchant_id is None:
                raise StopUser()
            return cls._merchant_id

    def peer(self) -> str:
        """Another payer's wallet, at random; the merchant while this user is alone."""
        others = [wallet for wallet in TransferUser._payers if wallet != self.wallet_id]
        return random.choice(others) if others else self.merchant_id

    @task(6)
    def pay_merchant(self) -> None:
        transfer(self.client, self.wallet_id, self.merchant_id, small_amount())

    @task(3)
    def pay_peer(self) -> None:
        transfer(self.client, self.wallet_id, self.peer(), small_amount())

    @task(1)
    def top_up(self) -> None:
        self.deposit("20.00")

    @task(1)
    def read(self) -> None:
        self.get_wallet()


class HoldUser(WalletUser):
    """A funded wallet that places holds, captures (whole or part) or voids each once, and
    reads them: the reserve, capture and release path and its held and available balances."""

    weight = 2
    _merchant_id: str | None = None
    _merchant_lock = BoundedSemaphore()
    merchant_id: str = ""
    open_holds: list[tuple[str, str]]  # (id, amount) of its holds still held, oldest first
    known_holds: deque[str]  # its latest holds, settled or not

    def on_start(self) -> None:
        super().on_start()
        self.open_holds = []
        self.known_holds = deque(maxlen=KNOWN_HOLDS)
        self.deposit(HOLD_FUNDING)
        self.merchant_id = self._merchant()

    def _merchant(self) -> str:
        """The process-wide wallet half the holds pay, created by the first user that needs it."""
        cls = HoldUser
        with cls._merchant_lock:
            if cls._merchant_id is None:
                cls._merchant_id = create_wallet(self.client)
            if cls._merchant_id is None:
                raise StopUser()
            return cls._merchant_id

    @task(4)
    def place(self) -> None:
        if len(self.open_holds) >= MAX_OPEN_HOLDS:
            self.capture()
            return
        amount = small_amount()
        payee = self.merchant_id if random.random() < 0.5 else None
        hold_id = place_hold(self.client, self.wallet_id, amount, payee)
        if hold_id is not None:
            self.open_holds.append((hold_id, amount))
            self.known_holds.append(hold_id)

    def _take_open_hold(self) -> tuple[str, str] | None:
        """One of its held holds, at random, no longer counted as open: it is settled now."""
        if not self.open_holds:
            return None
        return self.open_holds.pop(random.randrange(len(self.open_holds)))

    @task(2)
    def capture(self) -> None:
        taken = self._take_open_hold()
        if taken is not None:
            hold_id, amount = taken
            body = {"amount": part_of(amount)} if random.random() < 0.5 else {}
            settle_hold(self.client, hold_id, "capture", body)

    @task(1)
    def void(self) -> None:
        taken = self._take_open_hold()
        if taken is not None:
            settle_hold(self.client, taken[0], "void", {})

    @task(2)
    def read_hold(self) -> None:
        if self.known_holds:
            hold_id = random.choice(self.known_holds)
            get_ok(self.client, f"/api/v1/holds/{hold_id}", HOLD_NAME)

    @task(1)
    def list_holds(self) -> None:
        get_ok(self.client, f"{WALLETS}/{self.wallet_id}/holds?limit=10", HOLDS_NAME)

    @task(1)
    def top_up(self) -> None:
        self.deposit("20.00")

    @task(1)
    def read(self) -> None:
        self.get_wallet()
