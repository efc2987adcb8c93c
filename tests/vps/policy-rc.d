#!/bin/sh
# Debian's hook for package scripts: 101 = do not start services while apt
# installs them in the throwaway root (the recipe starts them itself).
exit 101
