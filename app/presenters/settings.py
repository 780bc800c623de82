"""The settings in effect, with the benchmark table merged over the built-in ranges."""

from app.schemas.settings import BenchmarkRead, SettingsRead, WorkspaceSettings
from app.services.settings import benchmark_table


def settings_read(settings: WorkspaceSettings) -> SettingsRead:
    return SettingsRead(
        **settings.model_dump(exclude={"benchmarks"}),
        benchmarks={
            name: BenchmarkRead(low=r.low, high=r.high)
            for name, r in benchmark_table(settings).items()
        },
    )
