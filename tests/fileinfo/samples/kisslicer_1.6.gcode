; KISSlicer - PRO
; Linux
; version 1.6.3.8 Release Linux64
; Built: Jun 13 2018, 13:00:00
; Running on 4 cores
;
; Saved: Mon Jan 15 09:00:00 2024
; 'part.gcode'
;
; *** Printer Settings ***
;
; printer_name = Prusa i3 MK3
; bed_size_x_mm = 250
; bed_size_y_mm = 210
; bed_size_z_mm = 200
; extrusion_width_mm = 0.45
; nozzle_dia_1 = 0.4
;
; *** Style Settings ***
;
; style_name = Normal
; layer_thickness_mm = 0.2
; first_layer_thickness_mm = 0.3
; max_layer_thickness_mm = 0.2
; extrusion_width_mm = 0.45
;
; *** Material Settings for Extruder 1 ***
;
; material_name = PLA
; first_layer_C = 215
; bed_C = 60
;
G28
M190 S60
M109 S215
G92 E0
;
; BEGIN_LAYER_OBJECT z=0.30 z_thickness=0.30
;
; *** Warming Extruder 1 to 215 C ***
G1 X100 Y100 Z0.30 F9000
G1 X150 Y100 E1.95 F1800
; END_LAYER_OBJECT z=0.30
;
; BEGIN_LAYER_OBJECT z=0.50 z_thickness=0.20
G1 Z0.50 F9000
G1 X150 Y150 E3.25 F1800
; END_LAYER_OBJECT z=0.50
;
; BEGIN_LAYER_OBJECT z=0.70 z_thickness=0.20
G1 Z0.70 F9000
G1 X100 Y150 E4.55 F1800
; END_LAYER_OBJECT z=0.70
M104 S0
M140 S0
M84
;
; Estimated Build Time:   25.50 minutes
; Estimated Build Volume:  1.10 cm^3
; Estimated Build Cost: $0.03
;
; Ext #1 = 456.70 mm
