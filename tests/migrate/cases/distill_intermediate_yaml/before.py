from neural_compressor.experimental import Distillation, common

distiller = Distillation("il.yaml")
distiller.teacher_model = common.Model(teacher)
distiller.student_model = common.Model(student)
distiller.train_func = train_func
distilled = distiller.fit()
