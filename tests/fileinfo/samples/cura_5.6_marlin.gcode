;FLAVOR:Marlin
;TIME:6666
;Filament used: 1.23456m
;Layer height: 0.2
;MINX:95.2
;MINY:95.2
;MINZ:0.2
;MAXX:154.8
;MAXY:154.8
;MAXZ:0.6
;TARGET_MACHINE.NAME:Creality Ender-3 Pro
;Generated with Cura_SteamEngine 5.6.0
M140 S60
M105
M190 S60
M104 S200
M105
M109 S200
M82 ;absolute extrusion mode
G28 ;Home
G1 Z2.0 F3000 ;Move Z Axis up
G92 E0 ;Reset Extruder
G1 X0.1 Y20 Z0.3 F5000.0 ;Move to start position
G1 X0.1 Y200.0 Z0.3 F1500.0 E15 ;Draw the first line
G92 E0
;LAYER_COUNT:3
;LAYER:0
M107
G0 F6000 X95.2 Y95.2 Z0.2
;TYPE:WALL-OUTER
G1 F1500 X154.8 Y95.2 E2.1
;MESH:NONMESH
G0 F300 X154.8 Y95.2 Z0.4
;TIME_ELAPSED:2222.0
;LAYER:1
;TYPE:WALL-OUTER
G1 F1500 X154.8 Y154.8 E4.2
;TIME_ELAPSED:4444.0
;LAYER:2
G0 F300 X154.8 Y154.8 Z0.6
G1 F1500 X95.2 Y154.8 E6.3
;TIME_ELAPSED:6666.0
G1 E5.3 F2700
M140 S0
M107
M104 S0
M84 X Y E ;Disable all steppers but Z
M82 ;absolute extrusion mode
M104 S0
;End of Gcode
;SETTING_3 {"global_quality": "[general]\\nversion = 4\\nname = Standard Quality #
;SETTING_3 2\\ndefinition = creality_ender3pro\\n\\n[metadata]\\ntype = quality_c
;SETTING_3 hanges\\nquality_type = standard\\nsetting_version = 22\\n\\n[values]\\n\\n"}
