"""The runner layer: profiles and engines. Only this package knows Dask, Flink or Dataflow."""

from recipes_core.runners.profile import RunnerProfile, bundled_profiles, load_profile

__all__ = ["RunnerProfile", "bundled_profiles", "load_profile"]
