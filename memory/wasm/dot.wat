;; Dot-product kernel for the embedded vector index (activities/memory/exact-index.ts).
;;
;;   scores(matrix, rows, dims, query, out):
;;     for r in 0..rows: out[r] = dot(matrix[r*dims .. r*dims+dims], query)
;;
;; All arguments are byte offsets into the imported memory except `rows` and
;; `dims` (element counts). The caller guarantees dims is a positive multiple
;; of 16 (vectors are zero-padded, which does not change a dot product), so
;; the inner loop needs no remainder handling.
;;
;; Four independent f32x4 accumulators (16 floats per iteration) keep the
;; add latency off the critical path; the float summation order therefore
;; differs from a sequential loop, by a few ULPs, never more.
;; Build with `node scripts/build-wasm.js` (SIMD enabled); the output is
;; committed as dot-wasm.ts so nothing at run time needs wabt.
(module
  (import "env" "memory" (memory 1))
  (func (export "scores")
    (param $matrix i32) (param $rows i32) (param $dims i32) (param $query i32) (param $out i32)
    (local $rowBytes i32)
    (local $outEnd i32)
    (local $rowEnd i32)
    (local $q i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s v128)
    (local.set $rowBytes (i32.shl (local.get $dims) (i32.const 2)))
    (local.set $outEnd (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $out) (local.get $outEnd)))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $a2 (v128.const f32x4 0 0 0 0))
        (local.set $a3 (v128.const f32x4 0 0 0 0))
        (local.set $q (local.get $query))
        (local.set $rowEnd (i32.add (local.get $matrix) (local.get $rowBytes)))
        (loop $inner
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (v128.load offset=0 (local.get $matrix)) (v128.load offset=0 (local.get $q)))))
          (local.set $a1 (f32x4.add (local.get $a1)
            (f32x4.mul (v128.load offset=16 (local.get $matrix)) (v128.load offset=16 (local.get $q)))))
          (local.set $a2 (f32x4.add (local.get $a2)
            (f32x4.mul (v128.load offset=32 (local.get $matrix)) (v128.load offset=32 (local.get $q)))))
          (local.set $a3 (f32x4.add (local.get $a3)
            (f32x4.mul (v128.load offset=48 (local.get $matrix)) (v128.load offset=48 (local.get $q)))))
          (local.set $matrix (i32.add (local.get $matrix) (i32.const 64)))
          (local.set $q (i32.add (local.get $q) (i32.const 64)))
          (br_if $inner (i32.lt_u (local.get $matrix) (local.get $rowEnd))))
        (local.set $s (f32x4.add
          (f32x4.add (local.get $a0) (local.get $a1))
          (f32x4.add (local.get $a2) (local.get $a3))))
        (f32.store (local.get $out)
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
            (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s)))))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $row))))
)
