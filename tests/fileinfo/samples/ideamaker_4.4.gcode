;Sliced by ideaMaker 4.4.1.6210, 2024-02-10 10:11:12
;Dimension:305.000 305.000 300.000 0.400
;Machine Name:Raise3D Pro3
;Machine UID:8a2f4c1e
;Filament Diameter #1: 1.75
;Filament Diameter #2: 1.75
;Filament Density #1: 1.24
;Filament Density #2: 1.24
;Filament Type #1: PLA
;Filament Type #2: PVA
;Filament Name #1: Raise3D Premium PLA
;Filament Name #2: Raise3D Premium PVA+
;Extruder Count:2
;Bounding Box:98.500 98.500 0.300 151.500 151.500 0.700
M82
G21
G90
M140 S60
M104 T0 S205
M109 T0 S205
G28
;LAYER:0
;HEIGHT:0.300
;Z:0.300
G1 Z0.300 F900
;TYPE:WALL-OUTER
G1 X151.5 Y98.5 E1.9612 F1800
;LAYER:1
;HEIGHT:0.200
;Z:0.500
G1 Z0.500 F900
G1 X151.5 Y151.5 E3.9224 F1800
;LAYER:2
;HEIGHT:0.200
;Z:0.700
G1 Z0.700 F900
G1 X98.5 Y151.5 E5.8836 F1800
M104 T0 S0
M140 S0
M84
;Print Time: 1530
;Material#1 Used: 612.4
;Material#2 Used: 0.0
