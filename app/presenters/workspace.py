"""The caller's workspace, from the workspace row and the caller's key."""

from app.models import ApiKey, Workspace
from app.schemas.workspace import ApiKeyCaller, CurrentWorkspace, WorkspaceRead


def current_workspace(workspace: Workspace, key: ApiKey) -> CurrentWorkspace:
    return CurrentWorkspace(
        workspace=WorkspaceRead.model_validate(workspace), caller=ApiKeyCaller.model_validate(key)
    )
