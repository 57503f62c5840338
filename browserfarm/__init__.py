"""BrowserFarm: a self-hosted browser farm."""
import pluggy

__version__ = "0.1.0"

#: Plugins decorate their hook implementations with this marker (plugin authors import
#: it, with everything else they need, from browserfarm.pluginapi).
hookimpl = pluggy.HookimplMarker("browserfarm")
