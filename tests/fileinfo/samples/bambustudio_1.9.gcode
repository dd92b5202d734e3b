; HEADER_BLOCK_START
; BambuStudio 01.09.07.52
; model printing time: 1h 2m 3s; total estimated time: 1h 10m 0s
; total layer number: 4
; total filament length [mm] : 4100.20
; total filament volume [cm^3] : 9862.12
; total filament weight [g] : 12.50
; model label id: 64
; filament_density: 1.24,1.27,1.26,1.04
; filament_diameter: 1.75,1.75,1.75,1.75
; max_z_height: 0.80
; filament: 1,3
; HEADER_BLOCK_END

; CONFIG_BLOCK_START
; filament_colour = #FFFFFF;#000000;#FF0000;#00AE42
; filament_type = PLA;PETG;PLA;ABS
; initial_layer_print_height = 0.2
; layer_height = 0.2
; nozzle_diameter = 0.4
; printer_model = Bambu Lab X1 Carbon
; printer_settings_id = Bambu Lab X1 Carbon 0.4 nozzle
; CONFIG_BLOCK_END

; EXECUTABLE_BLOCK_START
M73 P0 R70
M201 X20000 Y20000 Z500 E5000
G28
; CHANGE_LAYER
; Z_HEIGHT: 0.2
; LAYER_HEIGHT: 0.2
G1 X128 Y128 E1.1
; CHANGE_LAYER
; Z_HEIGHT: 0.4
; LAYER_HEIGHT: 0.2
M620 S2A
T2
M621 S2A
G1 X138 Y128 E1.1
; CHANGE_LAYER
; Z_HEIGHT: 0.6
; LAYER_HEIGHT: 0.2
G1 X138 Y138 E1.1
; CHANGE_LAYER
; Z_HEIGHT: 0.8
; LAYER_HEIGHT: 0.2
G1 X128 Y138 E1.1
M73 P100 R0
; EXECUTABLE_BLOCK_END
