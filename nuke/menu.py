"""VRMBG for Nuke, run by GUI sessions: Nodes toolbar > VRMBG > VRMBG Matte."""

import vrmbg_nuke

vrmbg_nuke.add_menu()
