"""Response actions, each a class satisfying wgsiem.respond.actions.base.Action."""
