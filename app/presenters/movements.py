"""Movement schemas from app.services.movements' values."""

from app.schemas.movements import (
    AccountMovementsReport,
    AnswerRead,
    MovementRead,
    NetMoverRead,
    TransitionRead,
)
from app.services.movements import AccountMovements, Movement, NetMove
from app.services.selection import Window


def movement_read(m: Movement) -> MovementRead:
    return MovementRead(
        stakeholder_id=m.stakeholder_id,
        account_id=m.account_id,
        role=m.role,
        job_level=m.job_level,
        direction=m.direction,
        from_=AnswerRead.model_validate(m.before),
        to=AnswerRead.model_validate(m.after),
    )


def net_mover_read(net: NetMove) -> NetMoverRead:
    return NetMoverRead(
        stakeholder_id=net.stakeholder_id,
        role=net.role,
        from_=AnswerRead.model_validate(net.before),
        to=AnswerRead.model_validate(net.after),
    )


def account_movements_read(
    account_id: str, window: Window, summary: AccountMovements
) -> AccountMovementsReport:
    return AccountMovementsReport(
        account_id=account_id,
        from_=window.start,
        to=window.end,
        up=summary.up,
        down=summary.down,
        transitions=[
            TransitionRead(from_=t.before, to=t.after, count=t.count) for t in summary.transitions
        ],
        climbers=[net_mover_read(n) for n in summary.climbers],
        fallers=[net_mover_read(n) for n in summary.fallers],
    )
