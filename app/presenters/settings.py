"""The settings in effect, with the benchmark table merged over the built-in ranges."""

from app.schemas.settings import BenchmarkRange, BenchmarkRead, SettingsRead, WorkspaceSettings
from app.services.settings import benchmark_table

TABLES = {"benchmarks", "role_benchmarks", "industry_role_benchmarks"}


def _read(r: BenchmarkRange) -> BenchmarkRead:
    return BenchmarkRead(low=r.low, high=r.high)


def settings_read(settings: WorkspaceSettings) -> SettingsRead:
    return SettingsRead(
        **settings.model_dump(exclude=TABLES),
        benchmarks={
            name: BenchmarkRead(low=r.low, high=r.high)
            for name, r in benchmark_table(settings).items()
        },
        role_benchmarks={role: _read(r) for role, r in settings.role_benchmarks.items()},
        industry_role_benchmarks={
            industry: {role: _read(r) for role, r in ranges.items()}
            for industry, ranges in sorted(settings.industry_role_benchmarks.items())
        },
    )
